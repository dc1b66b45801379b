// Package ops is the operator's view of tc BPF on a host: what runs on each
// device's hooks, in what order, who put it there and what is broken (show,
// ownership records, doctor), and the changes an operator makes (attach,
// detach, link update), with the classic clsact + cls_bpf fallback for
// kernels without tcx. The commands of cmd/tcx call it through the Host
// interface, so that another backend (the userspace runtime behind a
// daemon) can answer the same requests.
//
// The JSON form of Snapshot and Report is a stable schema, documented in
// SCHEMA.md beside this file: fields are only ever added.
package ops
