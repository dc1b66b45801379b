package skb

import "golang.org/x/sys/unix"

// Helper results: 0 or a negative errno, as the kernel's helpers return them.
const (
	errEFAULT     = -int64(unix.EFAULT)
	errEINVAL     = -int64(unix.EINVAL)
	errENOMEM     = -int64(unix.ENOMEM)
	errEACCES     = -int64(unix.EACCES)
	errERANGE     = -int64(unix.ERANGE)
	errEALREADY   = -int64(unix.EALREADY)
	errEBADMSG    = -int64(unix.EBADMSG)
	errEOPNOTSUPP = -int64(unix.EOPNOTSUPP)
	// errENOTSUPP is the kernel-internal ENOTSUPP (524), which helpers leak
	// to programs; it is not EOPNOTSUPP.
	errENOTSUPP = -524
)

// ENOTSUPP is the kernel-internal errno 524 some helpers return.
const ENOTSUPP = 524

// tc verdicts (include/uapi/linux/pkt_cls.h).
const (
	ActOK       = 0 // TC_ACT_OK
	ActShot     = 2 // TC_ACT_SHOT
	ActRedirect = 7 // TC_ACT_REDIRECT
)
