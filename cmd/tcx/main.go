package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command behind main, so tests can call it and compare its
// output with golden files.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:   "tcx",
		Short: "Linux tcx in Go: run and manage tc BPF program chains",
		Long: `tcx is the command line of tcx-go, a userspace implementation of Linux tcx
(the fd-based attach layer for tc BPF programs) checked against the real kernel.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newDemoCommand(), newTestRunCommand(), newRunCommand())
	cmdline := append([]string{"tcx"}, args...)
	root.AddCommand(newShowCommand(), newAttachCommand(cmdline), newDetachCommand(), newLinkCommand(cmdline), newDoctorCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		var status exitStatus
		if errors.As(err, &status) {
			return int(status)
		}
		fmt.Fprintf(stderr, "tcx: %v\n", err)
		return 1
	}
	return 0
}
