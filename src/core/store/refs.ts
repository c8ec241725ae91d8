/**
 * A reference to an object in the store. Workflows pass these instead of data,
 * so histories stay small and every artefact can be re-read and checked.
 */
export interface ObjectRef {
  /** s3://bucket/key */
  uri: string;
  /** Hex SHA-256 of the object's bytes. */
  sha256: string;
  bytes: number;
}

/** Splits `s3://bucket/key` into its parts; throws with the offending value otherwise. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) throw new Error(`expected an S3 URI like s3://bucket/key, got ${JSON.stringify(uri)}`);
  return { bucket: match[1]!, key: match[2]! };
}

/** Joins key parts with single slashes. */
export function joinKey(...parts: string[]): string {
  return parts
    .map((p) => p.replace(/^\/+|\/+$/g, ''))
    .filter((p) => p.length > 0)
    .join('/');
}
