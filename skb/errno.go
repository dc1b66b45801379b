package skb

import "github.com/tcxgo/tcx/internal/linuxerr"

// Helper results: 0 or a negative Linux errno, as the kernel's helpers
// return them; Linux's numbers on every host, since programs compare
// against them.
const (
	errEFAULT     = -linuxerr.EFAULT
	errEINVAL     = -linuxerr.EINVAL
	errENOMEM     = -linuxerr.ENOMEM
	errEACCES     = -linuxerr.EACCES
	errERANGE     = -linuxerr.ERANGE
	errEALREADY   = -linuxerr.EALREADY
	errEBADMSG    = -linuxerr.EBADMSG
	errEOPNOTSUPP = -linuxerr.EOPNOTSUPP
	// errENOTSUPP is the kernel-internal ENOTSUPP (524), which helpers leak
	// to programs; it is not EOPNOTSUPP.
	errENOTSUPP = -linuxerr.ENOTSUPP
)

// ENOTSUPP is the kernel-internal errno 524 some helpers return.
const ENOTSUPP = linuxerr.ENOTSUPP

// tc verdicts (include/uapi/linux/pkt_cls.h).
const (
	ActOK       = 0 // TC_ACT_OK
	ActShot     = 2 // TC_ACT_SHOT
	ActRedirect = 7 // TC_ACT_REDIRECT
)
