package pki

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	f, err := Generate(filepath.Join(dir, "pki"), net.ParseIP("10.96.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(dir, "kubeconfig")
	if err := f.WriteKubeconfig(kc, "https://127.0.0.1:6443"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || len(cfg.CAData) == 0 || len(cfg.CertData) == 0 || len(cfg.KeyData) == 0 {
		t.Fatalf("kubeconfig %+v", cfg)
	}
	read := func(p string) *x509.Certificate {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, srv, adm := read(f.CACert), read(f.ServingCert), read(f.AdminCert)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := srv.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("serving cert: %v", err)
	}
	if _, err := adm.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin cert: %v", err)
	}
	if adm.Subject.Organization[0] != "system:masters" {
		t.Errorf("admin groups %v", adm.Subject.Organization)
	}
	// The aggregator's client certificate chains to the front-proxy CA only.
	fpCA, fp := read(f.FrontProxyCACert), read(f.FrontProxyClientCert)
	fpPool := x509.NewCertPool()
	fpPool.AddCert(fpCA)
	client := x509.VerifyOptions{Roots: fpPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := fp.Verify(client); err != nil || fp.Subject.CommonName != FrontProxyClient {
		t.Errorf("front-proxy client cert %s: %v", fp.Subject, err)
	}
	client.Roots = pool
	if _, err := fp.Verify(client); err == nil {
		t.Error("front-proxy client cert verifies against the cluster CA")
	}
	if _, err := os.Stat(f.FrontProxyClientKey); err != nil {
		t.Error(err)
	}
}
