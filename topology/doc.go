// Package topology describes a userspace datapath in YAML and builds it:
// devices with their ports (wire, host side), veth pairs, MTUs and
// recordings; per hook a chain of ELF programs placed by anchors; global
// variables; maps shared by name between objects; the worker count. Load
// parses and validates a file, naming the line of every mistake; Build
// creates the userspace runtime, loads the objects with package engine,
// attaches the chains with links and opens the ports, giving what package
// datapath runs. The schema is documented in SCHEMA.md beside this file.
package topology
