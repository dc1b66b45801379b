package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden runs the command and compares stdout with testdata/<name>.golden.
func golden(t *testing.T, name string, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("tcx %v: exit %d, stderr:\n%s", args, code, stderr.String())
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("tcx %v output differs from %s:\n%s", args, path, stdout.String())
	}
}

func TestRun_Demo(t *testing.T) { golden(t, "demo", "demo") }

func TestRun_Help(t *testing.T) { golden(t, "help", "--help") }

func TestRun_UnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &stdout, &stderr); code == 0 {
		t.Fatalf("unknown command exited 0")
	}
	if !bytes.Contains(stderr.Bytes(), []byte(`unknown command "frobnicate"`)) {
		t.Errorf("stderr does not name the unknown command: %q", stderr.String())
	}
}
