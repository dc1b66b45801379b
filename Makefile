# The two commands a newcomer needs (see README.md):
#   make demo   runs the main job: tcx run, a chain of the project's own ELF
#               programs on a bundled capture, on the userspace runtime
#   make test   runs every test; CI runs it with TCX_REQUIRE_KERNEL=1
GO ?= go

.PHONY: demo test
demo:
	$(GO) run ./cmd/tcx run --topology testdata/datapath/demo.yaml --trace --dump-maps --record-dir demo-out

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 60m ./...
