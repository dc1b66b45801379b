// Package topology describes a userspace datapath in YAML and builds it:
// devices with their ports (wire, host side), network namespaces and the
// veth pairs that join them, MTUs and
// recordings; each namespace's addresses, routes and neighbours, the FIB
// bpf_fib_lookup consults there; per hook a chain of ELF programs placed by anchors; global
// variables; maps shared by name between objects; the worker count. Load
// parses and validates a file, naming the line of every mistake; Build
// creates one userspace runtime per namespace, loads the objects with package engine,
// attaches the chains with links and opens the ports, giving what package
// datapath runs. The schema is documented in SCHEMA.md beside this file.
package topology
