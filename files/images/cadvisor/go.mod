// Wrapper module for cAdvisor: github.com/google/cadvisor/cmd (package main of the cadvisor binary) is a
// module of its own without tags of its own, so it cannot be `go install`ed at a version. This module
// requires it at a pseudo-version of the commit tagged v0.60.6 in the library module, and the library
// module at v0.60.6; go_build.yml builds `github.com/google/cadvisor/cmd` from here.
// Not run here: the Go module proxy of this workplace serves github.com/google/cadvisor (v0.60.6) but no
// version of github.com/google/cadvisor/cmd (404 for tags, 403 for commits and branches), so go.sum is
// missing and the build stops with that message. Fill in the pseudo-version and run `go mod tidy` where
// the proxy serves it.
module prism.local/build/cadvisor

go 1.24

require github.com/google/cadvisor v0.60.6
