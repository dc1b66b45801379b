// Package linuxerr holds the Linux errno numbers BPF programs see, so helper results are Linux's on every host OS.
package linuxerr
