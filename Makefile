# The two commands a newcomer needs (see README.md):
#   make demo   runs the main job on the embedded userspace runtime
#   make test   runs every test; CI runs it with TCX_REQUIRE_KERNEL=1
GO ?= go

.PHONY: demo test
demo:
	$(GO) run ./cmd/tcx demo

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 60m ./...
