// Package probes builds the test programs of tcx-go as pure data: SCHED_CLS
// programs "tcN" that record in an array map that they ran and return a fixed
// verdict, runnable on the kernel and on the userspace runtime alike.
package probes
