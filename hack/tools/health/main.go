// Command llmops-health checks the project's status semantics with the libraries the GitOps
// tools themselves use, so a test asks Argo CD's and Flux's own code, not a re-implementation:
//
//	llmops-health lua-test DIR         run every <group>/<Kind>/health_test.yaml under DIR (Argo CD's
//	                                   resource_customizations layout) in gopher-lua, the interpreter
//	                                   Argo CD embeds; exit 1 on the first mismatch
//	llmops-health lua SCRIPT FILE...   print {"status","message"} of SCRIPT for each object (JSON lines)
//	llmops-health kstatus FILE...      print kstatus' {"kind","name","status","message"} for each object
//
// FILE is YAML or JSON, one object, a v1 List or several documents; "-" reads stdin.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 3 {
		fail("usage: llmops-health lua-test DIR | lua SCRIPT FILE... | kstatus FILE...")
	}
	var err error
	switch os.Args[1] {
	case "lua-test":
		err = luaTest(os.Args[2])
	case "lua":
		err = luaEval(os.Args[2], os.Args[3:])
	case "kstatus":
		err = kstatusEval(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "llmops-health: "+msg)
	os.Exit(1)
}

// healthStatus is Argo CD's health.HealthStatus as a health script returns it.
type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// healthTest mirrors the health_test.yaml files in Argo CD's resource_customizations.
type healthTest struct {
	Tests []struct {
		HealthStatus healthStatus `json:"healthStatus"`
		InputPath    string       `json:"inputPath"`
	} `json:"tests"`
}

func luaTest(root string) error {
	files, err := filepath.Glob(filepath.Join(root, "*", "*", "health_test.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no <group>/<Kind>/health_test.yaml under %s", root)
	}
	sort.Strings(files)
	count := 0
	for _, file := range files {
		dir := filepath.Dir(file)
		script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var spec healthTest
		if err := yaml.UnmarshalStrict(raw, &spec); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if len(spec.Tests) == 0 {
			return fmt.Errorf("%s has no tests", file)
		}
		for _, tc := range spec.Tests {
			objs, err := readObjects(filepath.Join(dir, tc.InputPath))
			if err != nil {
				return err
			}
			if len(objs) != 1 {
				return fmt.Errorf("%s: want one object, found %d", tc.InputPath, len(objs))
			}
			got, err := runHealth(string(script), objs[0])
			if err != nil {
				return fmt.Errorf("%s with %s: %w", file, tc.InputPath, err)
			}
			if got != tc.HealthStatus {
				return fmt.Errorf("%s with %s: got %+v, want %+v", file, tc.InputPath, got, tc.HealthStatus)
			}
			fmt.Printf("ok   %s %s: %s\n", filepath.Base(dir), tc.InputPath, got.Status)
			count++
		}
	}
	fmt.Printf("%d health checks passed\n", count)
	return nil
}

func luaEval(scriptPath string, inputs []string) error {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return err
	}
	return eachObject(inputs, func(obj map[string]any) (any, error) {
		return runHealth(string(script), obj)
	})
}

func kstatusEval(inputs []string) error {
	return eachObject(inputs, func(obj map[string]any) (any, error) {
		u := &unstructured.Unstructured{Object: obj}
		res, err := status.Compute(u)
		if err != nil {
			return nil, err
		}
		return map[string]string{
			"kind": u.GetKind(), "name": u.GetName(), "status": res.Status.String(), "message": res.Message,
		}, nil
	})
}

func eachObject(inputs []string, fn func(map[string]any) (any, error)) error {
	out := json.NewEncoder(os.Stdout)
	for _, input := range inputs {
		objs, err := readObjects(input)
		if err != nil {
			return err
		}
		for _, obj := range objs {
			res, err := fn(obj)
			if err != nil {
				return err
			}
			if err := out.Encode(res); err != nil {
				return err
			}
		}
	}
	return nil
}

// readObjects reads one object, a List, or a stream of YAML documents.
func readObjects(path string) ([]map[string]any, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	var objs []map[string]any
	for _, doc := range bytes.Split(raw, []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, err := decode(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if obj == nil {
			continue
		}
		if items, ok := obj["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(obj["kind"]), "List") {
			for _, item := range items {
				if m, ok := item.(map[string]any); ok {
					objs = append(objs, m)
				}
			}
			continue
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// decode reads one YAML or JSON document with integers as int64, as the API machinery does
// (kstatus reads metadata.generation with NestedInt64).
func decode(doc []byte) (map[string]any, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, err
	}
	obj, _ := numbers(value).(map[string]any)
	return obj, nil
}

func numbers(value any) any {
	switch v := value.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = numbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = numbers(v[k])
		}
	}
	return value
}

// runHealth runs a health script the way Argo CD does: a fresh VM with the safe standard
// libraries, the object as the global `obj`, and a returned table {status, message}.
func runHealth(script string, obj map[string]any) (healthStatus, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return healthStatus{}, err
	}
	table, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return healthStatus{}, errors.New("the script did not return a table")
	}
	result := healthStatus{
		Status:  lua.LVAsString(table.RawGetString("status")),
		Message: lua.LVAsString(table.RawGetString("message")),
	}
	switch result.Status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		return result, fmt.Errorf("status %q is not an Argo CD health status", result.Status)
	}
	return result, nil
}

// toLua converts decoded JSON into Lua values as Argo CD does: objects and arrays become
// tables (arrays 1-indexed), null becomes nil.
func toLua(L *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case []any:
		t := L.NewTable()
		for _, item := range v {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.NewTable()
		for key, item := range v {
			t.RawSetString(key, toLua(L, item))
		}
		return t
	default:
		return lua.LString(fmt.Sprint(v))
	}
}
