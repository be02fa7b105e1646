// CoreDNS with only the plugins the local node's Service DNS needs (kubernetes, cache, errors,
// log, health, ready). The full plugin set pulls in cloud SDKs (route53, azure, clouddns) that
// only slow the build; there is deliberately no `forward` plugin: names outside the cluster get
// SERVFAIL instead of leaving the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// The same relative order as CoreDNS's own plugin.cfg (core/dnsserver/zdirectives.go).
	dnsserver.Directives = []string{"ready", "health", "errors", "log", "cache", "kubernetes"}
}

func main() {
	coremain.Run()
}
