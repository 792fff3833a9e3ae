// Command accounts-gateway serves the accounts service's REST routes through grpc-gateway v2: the Go
// baseline that bench/side_by_side.py measures the Python edge against.
//
// The routes come from the google.api.http annotations of our own proto/shop/accounts/v1/accounts.proto;
// tools/gateway.py generates the Go code (not committed) and builds this command into the cache.
// Like the edge, it calls accounts over mTLS with the edge's workload certificate, gives each call a
// 10 s deadline unless the request carries Grpc-Timeout, and forwards the Authorization header, so
// accounts verifies the user's token again.
//
//	accounts-gateway -listen 127.0.0.1:8081 -backend 127.0.0.1:50051 -pki .dev/pki            (G0)
//	accounts-gateway ... -jwt -issuer https://shop.local -audience shop-api                    (G1)
//
// With -jwt it first does what the edge does before its gRPC call (tokens.go, policy.go): verifies the
// ES256 bearer token against accounts' JWKS and applies the method's (access.v1.policy).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails" // error details (google.rpc.BadRequest, ...) marshal in error bodies
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/encoding/protojson"

	accountsv1 "shop.local/bench/gateway/gen/shop/accounts/v1"
)

// The edge's default deadline for the calls behind a request (edge/config.py).
const defaultDeadline = 10 * time.Second

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "HTTP address to serve")
	backend := flag.String("backend", "127.0.0.1:50051", "accounts gRPC address")
	pki := flag.String("pki", ".dev/pki", "folder with ca.pem and the workload's certificate and key")
	workload := flag.String("workload", "edge", "the workload whose certificate (<name>.pem, <name>.key) the gateway presents")
	serverName := flag.String("servername", "localhost", "name checked against the accounts certificate")
	useJWT := flag.Bool("jwt", false, "verify the bearer token and the method's access policy before calling (as the edge does)")
	issuer := flag.String("issuer", "https://shop.local", "expected iss of access tokens (with -jwt)")
	audience := flag.String("audience", "shop-api", "expected aud of access tokens (with -jwt)")
	leeway := flag.Duration("leeway", 30*time.Second, "clock leeway for exp, iat and nbf (with -jwt)")
	jwksRefresh := flag.Duration("jwks-refresh", 30*time.Second, "how often accounts' JWKS is fetched again (with -jwt)")
	flag.Parse()

	creds, err := workloadCredentials(*pki, *workload, *serverName)
	if err != nil {
		log.Fatal(err)
	}
	options := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	var checks *accessChecks
	if *useJWT {
		checks = &accessChecks{workload: *workload, policies: accessPolicies(accountsv1.File_shop_accounts_v1_accounts_proto)}
		options = append(options, grpc.WithUnaryInterceptor(checks.intercept))
	}
	conn, err := grpc.NewClient(*backend, options...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := accountsv1.NewAccountsServiceClient(conn)
	if checks != nil {
		keys := newKeySet(func(ctx context.Context) ([]*accountsv1.Jwk, error) {
			set, err := client.GetJwks(ctx, &accountsv1.GetJwksRequest{})
			return set.GetKeys(), err
		}, *jwksRefresh)
		checks.tokens = &tokenVerifier{keys: keys, issuer: *issuer, audience: *audience, leeway: *leeway}
	}

	runtime.DefaultContextTimeout = defaultDeadline
	// proto3 JSON as the edge writes and reads it: lowerCamelCase names, fields without presence printed
	// with their default values, unknown fields refused.
	json := &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitDefaultValues: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, json))
	if err := accountsv1.RegisterAccountsServiceHandlerClient(context.Background(), mux, client); err != nil {
		log.Fatal(err)
	}
	log.Printf("accounts-gateway on %s -> %s (mTLS as %s), token and policy checks: %v", *listen, *backend, *workload, *useJWT)
	server := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(server.ListenAndServe())
}

// workloadCredentials presents <pki>/<workload>.pem and trusts only <pki>/ca.pem, as runtime/credentials.py does.
func workloadCredentials(pki, workload, serverName string) (credentials.TransportCredentials, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, workload+".pem"), filepath.Join(pki, workload+".key"))
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(pki, "ca.pem"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, os.ErrInvalid
	}
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: serverName,
		MinVersion: tls.VersionTLS12}), nil
}
