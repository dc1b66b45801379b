/* xdp_pass: an XDP program, not a tc one. tcx run must refuse it (the
 * "wrong program type" case of the run command's tests). */
#include "../progs/include/tcx_bpf.h"

SEC("xdp")
int xdp_pass(void *ctx)
{
	return 2; /* XDP_PASS */
}

char LICENSE[] SEC("license") = "GPL";
