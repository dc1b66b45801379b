/* xdp_pass: an XDP program (SEC("xdp")) that passes every frame. It exists
 * so that tests can check that `tcx attach` refuses a program of the wrong
 * type for a tc hook before anything reaches the kernel. */
#include "../include/tcx_bpf.h"

SEC("xdp")
int xdp_pass(void *ctx)
{
	return 2; /* XDP_PASS */
}

char LICENSE[] SEC("license") = "GPL";
