// Package thirdparty runs tc programs nobody on this project wrote (the
// Linux kernel's BPF selftests, testdata/thirdparty/selftests) through the
// kernel and the engine side by side: whether each loads, and then, packet
// by packet, whether they agree on everything BPF_PROG_TEST_RUN reports.
package thirdparty
