package main

// Bearer token verification, the same rule as runtime/tokens.py: ES256 only, the key from accounts'
// JWKS by kid, exp/iat/nbf within a leeway, iss and aud as configured, sub and jti present. Unlike
// the edge it keeps no cache of verified tokens: every request pays for one ES256 verification.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	accountsv1 "shop.local/bench/gateway/gen/shop/accounts/v1"
)

const maxTokenBytes = 4096 // runtime/tokens.py MAX_TOKEN_BYTES

type claims struct {
	Subject string
	Scopes  []string
}

func (c *claims) hasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

type tokenVerifier struct {
	keys     *keySet
	issuer   string
	audience string
	leeway   time.Duration
}

// verify returns the token's claims, or an error whose text is the RFC 6750 error_description.
func (v *tokenVerifier) verify(token string) (*claims, error) {
	if len(token) > maxTokenBytes {
		return nil, errors.New("token too large")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("malformed token")
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if decodeSegment(parts[0], &header) != nil {
		return nil, errors.New("malformed token")
	}
	if header.Alg != "ES256" {
		return nil, errors.New("token algorithm not accepted")
	}
	key := v.keys.key(header.Kid)
	if key == nil {
		return nil, errors.New("token signed with an unknown key")
	}
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(signature) != 64 {
		return nil, errors.New("token rejected: bad signature")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(key, digest[:], new(big.Int).SetBytes(signature[:32]), new(big.Int).SetBytes(signature[32:])) {
		return nil, errors.New("token rejected: bad signature")
	}
	var payload struct {
		Iss   *string         `json:"iss"`
		Sub   *string         `json:"sub"`
		Aud   json.RawMessage `json:"aud"`
		Exp   *float64        `json:"exp"`
		Iat   *float64        `json:"iat"`
		Nbf   *float64        `json:"nbf"`
		Jti   *string         `json:"jti"`
		Scope string          `json:"scope"`
	}
	if decodeSegment(parts[1], &payload) != nil {
		return nil, errors.New("token claims malformed")
	}
	if payload.Exp == nil || payload.Iat == nil || payload.Iss == nil || payload.Aud == nil || payload.Sub == nil || payload.Jti == nil {
		return nil, errors.New("token rejected: a required claim is missing")
	}
	now, leeway := float64(time.Now().Unix()), v.leeway.Seconds()
	switch {
	case *payload.Exp+leeway <= now:
		return nil, errors.New("token expired")
	case *payload.Iat > now+leeway:
		return nil, errors.New("token issued in the future")
	case payload.Nbf != nil && *payload.Nbf > now+leeway:
		return nil, errors.New("token not yet valid")
	case *payload.Iss != v.issuer:
		return nil, errors.New("token rejected: invalid issuer")
	case !audienceIncludes(payload.Aud, v.audience):
		return nil, errors.New("token rejected: invalid audience")
	case *payload.Sub == "":
		return nil, errors.New("token claims malformed")
	}
	return &claims{Subject: *payload.Sub, Scopes: strings.Fields(payload.Scope)}, nil
}

func decodeSegment(segment string, into any) error {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}

// audienceIncludes accepts aud as one string or a list of strings, as RFC 7519 section 4.1.3 allows.
func audienceIncludes(aud json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == want
	}
	var many []string
	return json.Unmarshal(aud, &many) == nil && slices.Contains(many, want)
}

// keySet holds the JWKS's P-256 keys by kid, as runtime/tokens.py's JwksCache does in short: fetched
// again every refresh interval, and at once for a kid it lacks (so a key rotated in verifies from its
// first token), but at most once a second. A failed fetch keeps the keys it had for five minutes more;
// after that nothing verifies until a fetch succeeds (fail closed).
type keySet struct {
	fetch   func(context.Context) ([]*accountsv1.Jwk, error)
	refresh time.Duration
	mu      sync.Mutex
	keys    map[string]*ecdsa.PublicKey
	fetched time.Time
	tried   time.Time
}

const (
	jwksFetchTimeout = 5 * time.Second
	jwksStaleFor     = 5 * time.Minute
)

func newKeySet(fetch func(context.Context) ([]*accountsv1.Jwk, error), refresh time.Duration) *keySet {
	return &keySet{fetch: fetch, refresh: refresh}
}

func (s *keySet) key(kid string) *ecdsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	_, known := s.keys[kid]
	if (!known || now.Sub(s.fetched) >= s.refresh) && now.Sub(s.tried) >= time.Second {
		s.tried = now
		s.load(now)
	}
	return s.keys[kid]
}

// load fetches the set (with s.mu held).
func (s *keySet) load(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
	defer cancel()
	published, err := s.fetch(ctx)
	if err != nil {
		if now.Sub(s.fetched) > s.refresh+jwksStaleFor {
			s.keys = nil
		}
		log.Printf("JWKS fetch failed (%v); %d key(s) still verify", err, len(s.keys))
		return
	}
	keys := map[string]*ecdsa.PublicKey{}
	for _, jwk := range published {
		if jwk.GetKty() != "EC" || jwk.GetCrv() != "P-256" || (jwk.GetAlg() != "" && jwk.GetAlg() != "ES256") {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(jwk.GetX())
		y, errY := base64.RawURLEncoding.DecodeString(jwk.GetY())
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			continue
		}
		key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil { // not a point of the curve
			continue
		}
		keys[jwk.GetKid()] = key
	}
	s.keys, s.fetched = keys, now
}
