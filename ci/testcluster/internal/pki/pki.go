// Package pki generates the throw-away certificates and keys of the test
// cluster: a CA, the apiserver serving certificate, an admin client
// certificate (group system:masters), a service-account signing key, the
// front-proxy CA and client certificate the aggregator presents to extension
// API servers (as kubeadm makes them), and an admin kubeconfig with
// everything embedded.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files are the paths of everything written by Generate.
type Files struct {
	Dir         string
	CACert      string
	CAKey       string
	ServingCert string
	ServingKey  string
	AdminCert   string
	AdminKey    string
	SAKey       string // private key, PEM (apiserver derives the public key)
	SAPub       string
	// FrontProxyCACert signs FrontProxyClientCert (CN FrontProxyClient), the
	// certificate kube-apiserver's aggregator presents to extension API
	// servers, which trust it through the requestheader client CA that
	// kube-system/extension-apiserver-authentication publishes.
	FrontProxyCACert     string
	FrontProxyClientCert string
	FrontProxyClientKey  string
	caCertPEM            []byte
	adminCertPEM         []byte
	adminKeyPEM          []byte
}

// AdminUser is the CN of the admin client certificate.
const AdminUser = "aiconform-admin"

// FrontProxyClient is the CN of the aggregator's client certificate (kubeadm's).
const FrontProxyClient = "front-proxy-client"

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// newCA makes a self-signed CA named cn: its key, DER and parsed certificate.
func newCA(cn string, notBefore, notAfter time.Time) (*ecdsa.PrivateKey, []byte, *x509.Certificate, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return key, der, cert, nil
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n.Add(n, big.NewInt(1))
}

func write(path string, data []byte, mode os.FileMode) error {
	return os.WriteFile(path, data, mode)
}

// Generate writes a fresh PKI into dir. serviceIP is the first IP of the
// service CIDR (the "kubernetes" service), included in the serving SANs.
func Generate(dir string, serviceIP net.IP) (*Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour)
	notAfter := now.Add(10 * 365 * 24 * time.Hour)

	caKey, caDER, caCert, err := newCA("aiconform-testcluster-ca", now, notAfter)
	if err != nil {
		return nil, err
	}

	sign := func(tmpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
		return x509.CreateCertificate(rand.Reader, tmpl, caCert, pub, caKey)
	}

	srvKey, err := newKey()
	if err != nil {
		return nil, err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if serviceIP != nil {
		ips = append(ips, serviceIP)
	}
	srvDER, err := sign(&x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: ips,
	}, srvKey.Public())
	if err != nil {
		return nil, err
	}

	admKey, err := newKey()
	if err != nil {
		return nil, err
	}
	admDER, err := sign(&x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: AdminUser, Organization: []string{"system:masters"}},
		NotBefore:    now,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, admKey.Public())
	if err != nil {
		return nil, err
	}

	fpCAKey, fpCADER, fpCACert, err := newCA("aiconform-testcluster-front-proxy-ca", now, notAfter)
	if err != nil {
		return nil, err
	}
	fpKey, err := newKey()
	if err != nil {
		return nil, err
	}
	fpDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: FrontProxyClient},
		NotBefore:    now,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, fpCACert, fpKey.Public(), fpCAKey)
	if err != nil {
		return nil, err
	}

	saKey, err := newKey()
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}

	f := &Files{
		Dir:         dir,
		CACert:      filepath.Join(dir, "ca.crt"),
		CAKey:       filepath.Join(dir, "ca.key"),
		ServingCert: filepath.Join(dir, "apiserver.crt"),
		ServingKey:  filepath.Join(dir, "apiserver.key"),
		AdminCert:   filepath.Join(dir, "admin.crt"),
		AdminKey:    filepath.Join(dir, "admin.key"),
		SAKey:       filepath.Join(dir, "sa.key"),
		SAPub:       filepath.Join(dir, "sa.pub"),

		FrontProxyCACert:     filepath.Join(dir, "front-proxy-ca.crt"),
		FrontProxyClientCert: filepath.Join(dir, "front-proxy-client.crt"),
		FrontProxyClientKey:  filepath.Join(dir, "front-proxy-client.key"),
	}
	caKeyPEM, err := keyPEM(caKey)
	if err != nil {
		return nil, err
	}
	srvKeyPEM, err := keyPEM(srvKey)
	if err != nil {
		return nil, err
	}
	admKeyPEM, err := keyPEM(admKey)
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := keyPEM(saKey)
	if err != nil {
		return nil, err
	}
	fpKeyPEM, err := keyPEM(fpKey)
	if err != nil {
		return nil, err
	}
	f.caCertPEM = certPEM(caDER)
	f.adminCertPEM = certPEM(admDER)
	f.adminKeyPEM = admKeyPEM
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{f.CACert, f.caCertPEM, 0o644},
		{f.CAKey, caKeyPEM, 0o600},
		{f.ServingCert, certPEM(srvDER), 0o644},
		{f.ServingKey, srvKeyPEM, 0o600},
		{f.AdminCert, f.adminCertPEM, 0o644},
		{f.AdminKey, admKeyPEM, 0o600},
		{f.SAKey, saKeyPEM, 0o600},
		{f.SAPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}), 0o644},
		{f.FrontProxyCACert, certPEM(fpCADER), 0o644},
		{f.FrontProxyClientCert, certPEM(fpDER), 0o644},
		{f.FrontProxyClientKey, fpKeyPEM, 0o600},
	} {
		if err := write(w.path, w.data, w.mode); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Kubeconfig renders an admin kubeconfig for server (https://host:port) with
// all credentials embedded.
func (f *Files) Kubeconfig(server string) []byte {
	b64 := func(b []byte) string { return encodeBase64(b) }
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: aiconform-testcluster
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: aiconform-testcluster
  context:
    cluster: aiconform-testcluster
    user: %s
    namespace: default
current-context: aiconform-testcluster
`, server, b64(f.caCertPEM), AdminUser, b64(f.adminCertPEM), b64(f.adminKeyPEM), AdminUser))
}

// WriteKubeconfig writes the admin kubeconfig atomically (0600).
func (f *Files) WriteKubeconfig(path, server string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, f.Kubeconfig(server), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
