package token

// Operator roles an operator token may carry, from least to most privileged:
// reader reads; member also acts on nodes (power, provision, passthru); admin
// also enrolls, edits and deletes.
// They live here, beside the claims that carry them, so that the operator
// API and the admin tool that mints tokens share them without one importing
// the other.
const (
	RoleReader = "reader"
	RoleMember = "member"
	RoleAdmin  = "admin"
)

// Roles lists the operator roles, least privileged first.
var Roles = []string{RoleReader, RoleMember, RoleAdmin}

// ValidRole reports whether name is a role an operator token may carry.
func ValidRole(name string) bool {
	switch name {
	case RoleReader, RoleMember, RoleAdmin:
		return true
	}
	return false
}
