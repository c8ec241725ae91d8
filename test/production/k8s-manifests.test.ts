/**
 * The Kubernetes manifests users deploy (infra/k8s/): every file parses as YAML, every document
 * is a documented Kubernetes object, and the facts the deployment depends on hold (workers run
 * src/workers/main.ts per task queue, the trainer has GPUs and the publish volume, vLLM has
 * runtime LoRA loading and the same volume at the same path, the search attributes match
 * temporal/search-attributes.txt, the config carries what workers read).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = join(root, 'infra/k8s');

// Minimal shapes of the objects looked at.
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { limits?: Record<string, unknown> };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    replicas?: number;
    template?: { spec: { containers: Container[]; volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[] } };
    scaleTargetRef?: { name: string };
  };
}

function load(file: string): { doc: unknown; comment: string }[] {
  const text = readFileSync(join(dir, file), 'utf8');
  const docs = parseAllDocuments(text);
  // The comment lines that open each document's source (documents are separated by `---` lines).
  const chunks = text.split(/^---$/m);
  expect(chunks.length, file).toBe(docs.length);
  return docs.map((d, i) => {
    expect(d.errors, `${file}: ${d.errors.map((e) => e.message).join('; ')}`).toEqual([]);
    const lines = chunks[i]!.split('\n').map((l) => l.trim()).filter(Boolean);
    const firstContent = lines.findIndex((l) => !l.startsWith('#'));
    return { doc: d.toJS() as unknown, comment: lines.slice(0, firstContent).join('\n') };
  });
}

const manifestFiles = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
const objects: K8sObject[] = manifestFiles.flatMap((f) => load(f).map(({ doc }) => doc as K8sObject));
const find = (kind: string, name: string): K8sObject => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  expect(o, `${kind}/${name}`).toBeDefined();
  return o!;
};
const container = (o: K8sObject): Container => o.spec!.template!.spec.containers[0]!;
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

describe('infra/k8s manifests', () => {
  it('parse, and every document is a named Kubernetes object with a comment that says what it is', () => {
    expect(manifestFiles.length).toBeGreaterThanOrEqual(6);
    for (const file of manifestFiles) {
      for (const { doc, comment } of load(file)) {
        const o = doc as K8sObject;
        expect(o.apiVersion, file).toMatch(/^[a-z./]*v\d/);
        expect(o.kind, file).toMatch(/^[A-Z]/);
        expect(o.metadata?.name, file).toMatch(/^[a-z0-9-]+$/);
        expect(comment.trim().length, `${file} ${o.kind}/${o.metadata.name} has no comment above it`).toBeGreaterThan(20);
      }
    }
    // The Helm values parse too (not a manifest: no apiVersion).
    const values = load('helm/temporal-values.yaml')[0]!.doc as { server: { config: { persistence: Record<string, { sql: { driver: string } }> } } };
    expect(values.server.config.persistence.default!.sql.driver).toBe('postgres12');
    expect(values.server.config.persistence.visibility!.sql.driver).toBe('postgres12');
  });

  it('run workers as Deployments per task queue from src/workers/main.ts, with the config and secrets workers read', () => {
    const deployments = objects.filter((o) => o.kind === 'Deployment' && o.metadata.name.startsWith('spark-worker'));
    const queues = deployments.map((d) => envOf(container(d)).SPARK_TASK_QUEUE);
    expect(new Set(queues).size).toBe(deployments.length);
    expect(queues).toContain('spark');
    for (const d of deployments) {
      const c = container(d);
      expect(c.command?.join(' ')).toBe('node --import tsx src/workers/main.ts');
      expect(c.envFrom).toEqual([{ configMapRef: { name: 'spark-config' } }, { secretRef: { name: 'spark-secrets' } }]);
      expect(d.spec!.replicas).toBeGreaterThanOrEqual(2);
    }
    expect(find('HorizontalPodAutoscaler', 'spark-worker').spec!.scaleTargetRef!.name).toBe('spark-worker');
    const config = find('ConfigMap', 'spark-config').data!;
    for (const key of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'SPARK_S3_ENDPOINT', 'SPARK_S3_BUCKET', 'SPARK_S3_REGION', 'SPARK_S3_FORCE_PATH_STYLE']) {
      expect(config, key).toHaveProperty(key);
    }
    const secret = find('Secret', 'spark-secrets').stringData!;
    expect(Object.keys(secret)).toEqual(expect.arrayContaining(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']));
    // Secrets stay out of the ConfigMap.
    expect(Object.keys(config).filter((k) => /KEY|SECRET|PASSWORD/.test(k))).toEqual([]);
  });

  it('give the trainer GPUs and the publish volume, and vLLM runtime LoRA loading from the same path', () => {
    const trainer = find('Deployment', 'spark-trainer');
    const t = container(trainer);
    expect(t.command?.slice(-3)).toEqual(['-m', 'spark_trainer', 'serve']);
    expect(t.resources?.limits?.['nvidia.com/gpu']).toBeGreaterThan(0);
    const publishDir = t.args?.find((a) => a.startsWith('--publish-dir='))?.split('=')[1];
    expect(publishDir).toBe('/shared/publish');

    const vllm = find('Deployment', 'spark-vllm');
    const v = container(vllm);
    expect(envOf(v).VLLM_ALLOW_RUNTIME_LORA_UPDATING).toBe('True');
    expect(v.args).toEqual(expect.arrayContaining(['--enable-lora', expect.stringMatching(/^--max-lora-rank=\d+$/)]));
    expect(v.resources?.limits?.['nvidia.com/gpu']).toBeGreaterThan(0);

    // The same claim mounted at the same path in both pods.
    const publishClaim = (o: K8sObject) => {
      const mount = container(o).volumeMounts!.find((m) => m.mountPath === publishDir)!;
      return o.spec!.template!.spec.volumes!.find((vol) => vol.name === mount.name)!.persistentVolumeClaim!.claimName;
    };
    expect(publishClaim(trainer)).toBe('spark-publish');
    expect(publishClaim(vllm)).toBe('spark-publish');
    const pvc = find('PersistentVolumeClaim', 'spark-publish') as K8sObject & { spec: { accessModes: string[] } };
    expect(pvc.spec.accessModes).toContain('ReadWriteMany');
  });

  it('register exactly the search attributes of temporal/search-attributes.txt', () => {
    const wanted = readFileSync(join(root, 'temporal/search-attributes.txt'), 'utf8').split('\n')
      .filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.trim().split(/\s+/).join('='));
    const job = container(find('Job', 'spark-search-attributes'));
    const script = job.args!.join('\n');
    const registered = [...script.matchAll(/\b(Spark\w+=\w+)/g)].map((m) => m[1]);
    expect(registered.sort()).toEqual(wanted.sort());
  });
});
