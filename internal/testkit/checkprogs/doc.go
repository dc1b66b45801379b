// Package checkprogs builds small tc programs on both sides of what the
// engine's load-time checks and the kernel's verifier decide where paths
// join, for the engine's unit tests and the comparison with the kernel.
package checkprogs
