// Command spark-service starts, follows and steers SPARK runs from a Go service with Temporal's Go SDK.
//
//	spark-service check rlTrain rl.json            # validate against the published schema only
//	spark-service start [-wait] rlTrain rl.json    # validate, start; prints the workflow ID
//	spark-service progress spark/my-rl/rl-train    # the `progress` query, as JSON
//	spark-service pause spark/my-rl/rl-train       # also resume, stop (after the next checkpoint)
//	spark-service result spark/my-rl/rl-train      # waits for the run; its result as JSON
//
// Every workflow takes one JSON object. It is checked against docs/schemas/<workflow>.input.json before
// it is sent, so a mistake fails here naming the field instead of failing the run on a worker.
//
// Environment: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE (default `default`),
// TEMPORAL_API_KEY (Temporal Cloud; implies TLS), TEMPORAL_TLS=true, TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY
// (mTLS client certificate and key files), SPARK_TASK_QUEUE (default `spark`),
// SPARK_SCHEMAS_DIR (default: ../../docs/schemas from the working directory, as in this repository; in a
// service, the schemas shipped in the npm package or a copy).
//
// Exit codes: 0 done, 1 the run failed or the request was refused, 2 bad command line or input.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The search attributes every SPARK run carries; set at start so a run is listed before a worker picks it up.
var (
	sparkRun   = temporal.NewSearchAttributeKeyKeyword("SparkRun")
	sparkStage = temporal.NewSearchAttributeKeyKeyword("SparkStage")
)

// Signals of the GRPO loop, taken by rlTrain and coEvolve runs.
var signals = map[string]string{"pause": "pause", "resume": "resume", "stop": "stopAfterCheckpoint"}

var grpoWorkflows = []string{"rlTrain", "coEvolve"}

// InputIssue is one problem with an input: the dotted field (`(input)` for the whole object) and what is wrong.
type InputIssue struct {
	Field   string
	Message string
}

// InputError is input refused before it reaches Temporal.
type InputError struct {
	Workflow string
	Issues   []InputIssue
}

func (e *InputError) Error() string {
	lines := []string{fmt.Sprintf("invalid %s input:", e.Workflow)}
	for _, i := range e.Issues {
		lines = append(lines, fmt.Sprintf("  %s: %s", i.Field, i.Message))
	}
	return strings.Join(lines, "\n")
}

// RefusedError is a request the run cannot take (wrong workflow, not running).
type RefusedError struct{ msg string }

func (e *RefusedError) Error() string { return e.msg }

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func schemasDir() string {
	return env("SPARK_SCHEMAS_DIR", filepath.Join("..", "..", "docs", "schemas"))
}

// ValidateInput checks the raw JSON input against the workflow's published schema.
func ValidateInput(workflow string, input []byte) error {
	path := filepath.Join(schemasDir(), workflow+".input.json")
	schemaFile, err := os.Open(path)
	if err != nil {
		return &InputError{workflow, []InputIssue{{"(workflow)", fmt.Sprintf("no schema %s (set SPARK_SCHEMAS_DIR)", path)}}}
	}
	defer schemaFile.Close()
	doc, err := jsonschema.UnmarshalJSON(schemaFile)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	compiler := jsonschema.NewCompiler()
	if err := compiler.AddResource(path, doc); err != nil {
		return err
	}
	schema, err := compiler.Compile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	value, err := jsonschema.UnmarshalJSON(strings.NewReader(string(input)))
	if err != nil {
		return &InputError{workflow, []InputIssue{{"(input)", fmt.Sprintf("not JSON: %v", err)}}}
	}
	var invalid *jsonschema.ValidationError
	if err := schema.Validate(value); errors.As(err, &invalid) {
		return &InputError{workflow, issues(invalid)}
	} else if err != nil {
		return err
	}
	return nil
}

var printer = message.NewPrinter(language.English)

// issues flattens the validator's tree into one issue per failing leaf, naming the field itself where the
// schema names its parent (a required field, an unknown field).
func issues(e *jsonschema.ValidationError) []InputIssue {
	if len(e.Causes) > 0 {
		var out []InputIssue
		for _, c := range e.Causes {
			out = append(out, issues(c)...)
		}
		return out
	}
	field := func(extra ...string) string {
		if path := append(slices.Clone(e.InstanceLocation), extra...); len(path) > 0 {
			return strings.Join(path, ".")
		}
		return "(input)"
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		out := make([]InputIssue, 0, len(k.Missing))
		for _, m := range k.Missing {
			out = append(out, InputIssue{field(m), "required"})
		}
		return out
	case *kind.AdditionalProperties:
		out := make([]InputIssue, 0, len(k.Properties))
		for _, p := range k.Properties {
			out = append(out, InputIssue{field(p), "unknown field (check the spelling against the input schema)"})
		}
		return out
	default:
		return []InputIssue{{field(), e.ErrorKind.LocalizedString(printer)}}
	}
}

var upper = regexp.MustCompile(`[A-Z]`)

// StageOf is the stage part of workflow IDs and the SparkStage value: rlTrain -> rl-train.
func StageOf(workflow string) string {
	return upper.ReplaceAllStringFunc(workflow, func(c string) string { return "-" + strings.ToLower(c) })
}

// Connect dials Temporal from the environment.
func Connect() (client.Client, error) {
	opts := client.Options{
		HostPort:  env("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		Namespace: env("TEMPORAL_NAMESPACE", "default"),
		// Warnings and errors only, to stderr: stdout carries the JSON answers.
		Logger: log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	if key := os.Getenv("TEMPORAL_API_KEY"); key != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	if os.Getenv("TEMPORAL_API_KEY") != "" || os.Getenv("TEMPORAL_TLS") == "true" {
		opts.ConnectionOptions.TLS = &tls.Config{}
	}
	if cert, key := os.Getenv("TEMPORAL_TLS_CERT"), os.Getenv("TEMPORAL_TLS_KEY"); cert != "" || key != "" {
		if cert == "" || key == "" {
			return nil, errors.New("TLS client auth needs both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY")
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY: %w", err)
		}
		opts.ConnectionOptions.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (namespace %s): %w; set TEMPORAL_ADDRESS", opts.HostPort, opts.Namespace, err)
	}
	return c, nil
}

// Start validates the input, then starts the workflow under spark/<runName>/<stage> (or workflowID).
func Start(ctx context.Context, c client.Client, workflow string, input []byte, workflowID string) (client.WorkflowRun, error) {
	if err := ValidateInput(workflow, input); err != nil {
		return nil, err
	}
	var named struct {
		RunName string `json:"runName"`
	}
	if err := json.Unmarshal(input, &named); err != nil {
		return nil, err
	}
	if workflowID == "" {
		workflowID = fmt.Sprintf("spark/%s/%s", named.RunName, StageOf(workflow))
	}
	return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                env("SPARK_TASK_QUEUE", "spark"),
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		TypedSearchAttributes:    temporal.NewSearchAttributes(sparkRun.ValueSet(named.RunName), sparkStage.ValueSet(StageOf(workflow))),
	}, workflow, json.RawMessage(input)) // sent as written: the worker fills in the defaults
}

// Signal sends a GRPO-loop signal to a running rlTrain or coEvolve run.
func Signal(ctx context.Context, c client.Client, workflowID, name string) error {
	d, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return err
	}
	info := d.GetWorkflowExecutionInfo()
	if !slices.Contains(grpoWorkflows, info.GetType().GetName()) {
		return &RefusedError{fmt.Sprintf("%s is a %s run; only rlTrain and coEvolve take %s", workflowID, info.GetType().GetName(), name)}
	}
	if info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return &RefusedError{fmt.Sprintf("%s is not running", workflowID)}
	}
	return c.SignalWorkflow(ctx, workflowID, "", signals[name], nil)
}

func readInput(path string) ([]byte, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, &InputError{"(file)", []InputIssue{{path, err.Error()}}}
	}
	return data, nil
}

func printJSON(v any) error {
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

const usage = "usage: spark-service check|start [-wait] <workflow> <input.json> | progress|pause|resume|stop|result <workflow-id>"

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return &usageError{usage}
	}
	command := args[0]
	flags := flag.NewFlagSet(command, flag.ContinueOnError)
	wait := flags.Bool("wait", false, "wait for the run and print its result")
	workflowID := flags.String("workflow-id", "", "default spark/<runName>/<stage>")
	if err := flags.Parse(args[1:]); err != nil {
		return &usageError{err.Error()}
	}
	rest := flags.Args()
	switch command {
	case "check", "start":
		if len(rest) != 2 {
			return &usageError{usage}
		}
		input, err := readInput(rest[1])
		if err != nil {
			return err
		}
		// Before connecting: bad input fails without a server.
		if err := ValidateInput(rest[0], input); err != nil {
			return err
		}
		if command == "check" {
			return printJSON(map[string]any{"workflow": rest[0], "valid": true})
		}
		c, err := Connect()
		if err != nil {
			return err
		}
		defer c.Close()
		started, err := Start(ctx, c, rest[0], input, *workflowID)
		if err != nil {
			return err
		}
		if err := printJSON(map[string]string{"workflowId": started.GetID(), "runId": started.GetRunID()}); err != nil || !*wait {
			return err
		}
		var result json.RawMessage
		if err := started.Get(ctx, &result); err != nil {
			return err
		}
		return printJSON(result)
	case "progress", "pause", "resume", "stop", "result":
		if len(rest) != 1 {
			return &usageError{usage}
		}
		c, err := Connect()
		if err != nil {
			return err
		}
		defer c.Close()
		id := rest[0]
		var out json.RawMessage
		switch command {
		case "progress":
			value, err := c.QueryWorkflow(ctx, id, "", "progress")
			if err != nil {
				return err
			}
			if err := value.Get(&out); err != nil {
				return err
			}
		case "result":
			// Follows continue-as-new to the run that closes.
			if err := c.GetWorkflow(ctx, id, "").Get(ctx, &out); err != nil {
				return err
			}
		default:
			if err := Signal(ctx, c, id, command); err != nil {
				return err
			}
			return printJSON(map[string]string{"workflowId": id, "signal": signals[command]})
		}
		return printJSON(out)
	default:
		return &usageError{fmt.Sprintf("unknown command %q\n%s", command, usage)}
	}
}

func main() {
	err := run(context.Background(), os.Args[1:])
	if err == nil {
		return
	}
	var (
		input   *InputError
		usage   *usageError
		started *serviceerror.WorkflowExecutionAlreadyStarted
		failed  *temporal.WorkflowExecutionError
	)
	code := 1
	switch {
	case errors.As(err, &input), errors.As(err, &usage):
		code = 2
	case errors.As(err, &started):
		err = fmt.Errorf("a run with this workflow ID is already going: %w", err)
	case errors.As(err, &failed):
		err = fmt.Errorf("the run failed: %w", errors.Unwrap(failed))
	}
	fmt.Fprintf(os.Stderr, "spark-service: %v\n", err)
	os.Exit(code)
}
