package main

// The end-user half of each method's (access.v1.policy), read from the descriptors the generated code
// embeds, applied as the edge applies it (edge/routes.py, runtime/access.py): a method the gateway's
// workload may not call is refused; a method with scopes needs a verified bearer token carrying all of
// them; then, with an owner field, the token's subject must equal that field of the request unless it
// carries a bypass scope. It runs as a gRPC client interceptor, so it sees the request message
// grpc-gateway built from the HTTP request, before anything is sent to accounts.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	accessv1 "shop.local/bench/gateway/gen/access/v1"
)

type accessChecks struct {
	workload string
	policies map[string]*accessv1.AccessPolicy // by full method, "/package.Service/Method"
	tokens   *tokenVerifier
}

// accessPolicies reads the policy of every method of the file's services; a method without one gets
// an empty policy, which no workload may call (deny by default).
func accessPolicies(file protoreflect.FileDescriptor) map[string]*accessv1.AccessPolicy {
	policies := map[string]*accessv1.AccessPolicy{}
	for i := range file.Services().Len() {
		service := file.Services().Get(i)
		for j := range service.Methods().Len() {
			method := service.Methods().Get(j)
			policy, _ := proto.GetExtension(method.Options(), accessv1.E_Policy).(*accessv1.AccessPolicy)
			policies[fmt.Sprintf("/%s/%s", service.FullName(), method.Name())] = policy
		}
	}
	return policies
}

func (a *accessChecks) intercept(ctx context.Context, method string, request, reply any, conn *grpc.ClientConn,
	invoke grpc.UnaryInvoker, options ...grpc.CallOption) error {
	policy := a.policies[method]
	if !slices.Contains(policy.GetCallers(), a.workload) {
		return status.Errorf(codes.PermissionDenied, "%s may not call %s", a.workload, method)
	}
	if len(policy.GetScopes()) > 0 {
		md, _ := metadata.FromOutgoingContext(ctx)
		token, err := bearerToken(md.Get("authorization"))
		if err != nil {
			return err
		}
		found, err := a.tokens.verify(token)
		if err != nil {
			return invalidToken(err.Error())
		}
		if err := authorize(policy, found, request.(proto.Message)); err != nil {
			return err
		}
	}
	return invoke(ctx, method, request, reply, conn, options...)
}

// bearerToken reads `Authorization: Bearer <token>`. grpc-gateway puts an Unauthenticated status's
// message in WWW-Authenticate, so the message is the RFC 6750 challenge itself.
func bearerToken(values []string) (string, error) {
	if len(values) == 0 || strings.TrimSpace(values[0]) == "" {
		return "", status.Error(codes.Unauthenticated, `Bearer realm="shop"`)
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return "", invalidToken("authorization must use the Bearer scheme")
	}
	return strings.TrimSpace(token), nil
}

func invalidToken(description string) error {
	return status.Errorf(codes.Unauthenticated, `Bearer realm="shop", error="invalid_token", error_description=%q`, description)
}

func authorize(policy *accessv1.AccessPolicy, c *claims, request proto.Message) error {
	var lacking []string
	for _, scope := range policy.GetScopes() {
		if !c.hasScope(scope) {
			lacking = append(lacking, scope)
		}
	}
	if len(lacking) > 0 {
		slices.Sort(lacking)
		return status.Errorf(codes.PermissionDenied, "token lacks scope %s", strings.Join(lacking, " "))
	}
	owner := policy.GetOwnerField()
	if owner == "" || slices.ContainsFunc(policy.GetBypassScopes(), c.hasScope) {
		return nil
	}
	if fieldValue(request.ProtoReflect(), owner) != c.Subject {
		return status.Error(codes.PermissionDenied, "this resource belongs to another account")
	}
	return nil
}

// fieldValue is the value at a dotted field path ("id", "account.id") as text; "" when a name is unknown.
func fieldValue(message protoreflect.Message, path string) string {
	names := strings.Split(path, ".")
	for i, name := range names {
		field := message.Descriptor().Fields().ByName(protoreflect.Name(name))
		if field == nil {
			return ""
		}
		value := message.Get(field)
		if i == len(names)-1 {
			return fmt.Sprint(value.Interface())
		}
		if field.Message() == nil {
			return ""
		}
		message = value.Message()
	}
	return ""
}
