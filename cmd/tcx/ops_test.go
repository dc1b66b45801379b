package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRun_OpsHelp checks every operator command's help, examples included.
func TestRun_OpsHelp(t *testing.T) {
	for _, c := range [][]string{{"show"}, {"attach"}, {"detach"}, {"link"}, {"link", "update"}, {"link", "detach"}, {"doctor"}} {
		name := "help_" + strings.Join(c, "_")
		t.Run(name, func(t *testing.T) {
			golden(t, name, append(c, "--help")...)
			var out, errOut bytes.Buffer
			run(context.Background(), append(c, "--help"), &out, &errOut)
			if !strings.Contains(out.String(), "Examples:") {
				t.Errorf("tcx %s --help has no examples", strings.Join(c, " "))
			}
		})
	}
}

// TestRun_OpsArgs checks that wrong argument counts fail with status 1
// before anything is opened.
func TestRun_OpsArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"attach", "eth0"}, "attach takes DEV, a hook (ingress or egress) and an ELF object, got 1"},
		{[]string{"detach"}, "detach takes DEV, a hook (ingress or egress) and a REF, got 0"},
		{[]string{"detach", "eth0", "ingress", "first"}, `REF "first": want id:N`},
		{[]string{"detach", "eth0", "ingress", "id:x"}, `REF "id:x": id: needs a positive number`},
		{[]string{"link", "update", "/sys/fs/bpf/x"}, "update takes a link pin and an ELF object, got 1"},
		{[]string{"show", "a", "b"}, "accepts at most 1 arg"},
		{[]string{"doctor", "x"}, `unknown command "x"`},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), c.args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("tcx %v: exit %d, stderr %q; want 1 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}
