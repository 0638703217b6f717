package console

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/bcrypt"
)

// Role is what an operator may do. Each role may do all the roles before it may.
type Role string

// The three roles.
const (
	// Viewer reads every page; personal data stays masked.
	Viewer Role = "viewer"
	// Analyst also triages alerts (assign, status, notes) and reveals IVMS101 payloads.
	Analyst Role = "analyst"
	// Admin also redelivers callbacks and peer messages and manages operators.
	Admin Role = "admin"
)

var rank = map[Role]int{Viewer: 1, Analyst: 2, Admin: 3}

// ParseRole reads a role name, refusing anything but the three roles.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if err := r.check(); err != nil {
		return "", fmt.Errorf("role: want viewer, analyst or admin, got %q", s)
	}
	return r, nil
}

// check refuses anything but the three roles.
func (r Role) check() error {
	if rank[r] == 0 {
		return fmt.Errorf("role: want viewer, analyst or admin, got %q", r)
	}
	return nil
}

// Can reports whether an operator of role r may do what role need is required for.
func (r Role) Can(need Role) bool { return rank[r] >= rank[need] && rank[need] > 0 }

// Operator is a person who logs in to the console. It never carries the password hash out of
// this file.
type Operator struct {
	Name        string       `db:"name"`
	Role        Role         `db:"role"`
	CreatedAt   time.Time    `db:"created_at"`
	DisabledAt  sql.NullTime `db:"disabled_at"`
	LastLoginAt sql.NullTime `db:"last_login_at"`
}

// Operators keeps the console's operators (table console_operators) and checks their
// passwords. The CLI (`enclave operator`) and the console's login use it.
type Operators struct {
	db    *sqlx.DB
	audit *Audit
	cost  int
}

// NewOperators returns the operator store on db; every change is written to the audit log.
func NewOperators(db *sqlx.DB) *Operators {
	return &Operators{db: db, audit: NewAudit(db), cost: bcrypt.DefaultCost}
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ErrExists is returned by Add for a name already taken.
var ErrExists = errors.New("an operator of that name exists")

// ErrNoOperator is returned for a name no operator has.
var ErrNoOperator = errors.New("no operator of that name")

// ErrLastAdmin is returned by SetRole and Disable for a change that would leave no enabled
// admin: nobody could then manage operators from the console.
var ErrLastAdmin = errors.New("it is the last enabled admin; make another operator admin first")

// Add creates an operator with a generated password, returned once and stored only as a
// bcrypt hash. by names who added it, for the audit log ("cli" from the command line).
func (o *Operators) Add(ctx context.Context, name string, role Role, by string) (password string, err error) {
	if !nameRe.MatchString(name) {
		return "", fmt.Errorf("name: want 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit; got %q", name)
	}
	if err := role.check(); err != nil {
		return "", err
	}
	password, hash, err := o.newPassword()
	if err != nil {
		return "", err
	}
	tx, err := o.db.BeginTxx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	res, err := tx.ExecContext(ctx, `INSERT INTO console_operators (name, role, password_hash) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, name, string(role), hash)
	if err != nil {
		return "", fmt.Errorf("add operator %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", fmt.Errorf("%w: %s", ErrExists, name)
	}
	if err := o.audit.recordIn(ctx, tx, Entry{Operator: by, Action: ActionOperatorAdded, Subject: name, Detail: "role " + string(role)}); err != nil {
		return "", err
	}
	return password, tx.Commit()
}

// newPassword generates a password of 144 random bits and its bcrypt hash.
func (o *Operators) newPassword() (password, hash string, err error) {
	b := make([]byte, 18)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails (Go 1.24+)
	password = base64.RawURLEncoding.EncodeToString(b)
	h, err := bcrypt.GenerateFromPassword([]byte(password), o.cost)
	if err != nil {
		return "", "", fmt.Errorf("hash password: %w", err)
	}
	return password, string(h), nil
}

// ResetPassword gives an operator a new generated password, returned once, and enables them
// again; `enclave dev` uses it to print a working login on every start.
func (o *Operators) ResetPassword(ctx context.Context, name, by string) (string, error) {
	password, hash, err := o.newPassword()
	if err != nil {
		return "", err
	}
	tx, err := o.db.BeginTxx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	res, err := tx.ExecContext(ctx, `UPDATE console_operators SET password_hash = $2, disabled_at = NULL WHERE name = $1`, name, hash)
	if err != nil {
		return "", fmt.Errorf("reset password of %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", fmt.Errorf("%w: %s", ErrNoOperator, name)
	}
	if err := o.audit.recordIn(ctx, tx, Entry{Operator: by, Action: ActionPasswordReset, Subject: name}); err != nil {
		return "", err
	}
	return password, tx.Commit()
}

// List returns every operator, by name.
func (o *Operators) List(ctx context.Context) ([]Operator, error) {
	var out []Operator
	if err := o.db.SelectContext(ctx, &out, `SELECT name, role, created_at, disabled_at, last_login_at
		FROM console_operators ORDER BY name`); err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	return out, nil
}

// Find returns one operator, or ErrNoOperator.
func (o *Operators) Find(ctx context.Context, name string) (Operator, error) {
	var op Operator
	err := o.db.GetContext(ctx, &op, `SELECT name, role, created_at, disabled_at, last_login_at
		FROM console_operators WHERE name = $1`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return op, fmt.Errorf("%w: %s", ErrNoOperator, name)
	}
	if err != nil {
		return op, fmt.Errorf("find operator %s: %w", name, err)
	}
	return op, nil
}

// Disable stops an operator from logging in and ends their sessions at their next request.
// Disabling a disabled operator changes nothing.
func (o *Operators) Disable(ctx context.Context, name, by string) error {
	return o.change(ctx, name, func(tx *sqlx.Tx, was lockedOperator) (*Entry, error) {
		if _, err := tx.ExecContext(ctx, `UPDATE console_operators SET disabled_at = coalesce(disabled_at, now()) WHERE name = $1`, name); err != nil {
			return nil, fmt.Errorf("disable operator %s: %w", name, err)
		}
		return &Entry{Operator: by, Action: ActionOperatorDisabled, Subject: name}, nil
	})
}

// SetRole gives an operator another role, from their next request on.
func (o *Operators) SetRole(ctx context.Context, name string, role Role, by string) error {
	if err := role.check(); err != nil {
		return err
	}
	return o.change(ctx, name, func(tx *sqlx.Tx, was lockedOperator) (*Entry, error) {
		if was.Role == role {
			return nil, nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE console_operators SET role = $2 WHERE name = $1`, name, string(role)); err != nil {
			return nil, fmt.Errorf("set role of %s: %w", name, err)
		}
		return &Entry{Operator: by, Action: ActionRoleChanged, Subject: name, Detail: string(was.Role) + " → " + string(role)}, nil
	})
}

// lockedOperator is an operator's row as a change found it, locked.
type lockedOperator struct {
	Role     Role         `db:"role"`
	Disabled sql.NullTime `db:"disabled_at"`
}

// change runs edit on operator name's row, locked, in one transaction: edit makes the change
// and returns its audit entry (nil: nothing changed, nothing recorded). A change that leaves no
// enabled admin is refused (ErrLastAdmin).
func (o *Operators) change(ctx context.Context, name string, edit func(*sqlx.Tx, lockedOperator) (*Entry, error)) error {
	tx, err := o.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var was lockedOperator
	err = tx.GetContext(ctx, &was, `SELECT role, disabled_at FROM console_operators WHERE name = $1 FOR UPDATE`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", ErrNoOperator, name)
	}
	if err != nil {
		return fmt.Errorf("find operator %s: %w", name, err)
	}
	entry, err := edit(tx, was)
	if err != nil || entry == nil {
		return err
	}
	if was.Role == Admin && !was.Disabled.Valid {
		if err := o.adminLeft(ctx, tx, name); err != nil {
			return err
		}
	}
	if err := o.audit.recordIn(ctx, tx, *entry); err != nil {
		return err
	}
	return tx.Commit()
}

// adminLeft refuses, with ErrLastAdmin, a change to name, an enabled admin until then, in tx
// that leaves no enabled admin.
// The admins' rows are locked, so two admins demoting each other at once cannot both succeed.
func (o *Operators) adminLeft(ctx context.Context, tx *sqlx.Tx, name string) error {
	var admins []string
	if err := tx.SelectContext(ctx, &admins, `SELECT name FROM console_operators WHERE role = 'admin' AND disabled_at IS NULL
		ORDER BY name FOR UPDATE`); err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if len(admins) == 0 {
		return fmt.Errorf("%s: %w", name, ErrLastAdmin)
	}
	return nil
}

// dummyHash is compared against when no operator has the name, so that a login for an unknown
// name takes as long as one with a wrong password. Made at the first such login, not at every
// start of every command linking the console (a bcrypt hash at the default cost).
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no operator has this password"), bcrypt.DefaultCost)
	return h
})

// errBadLogin is every reason a login fails: the page never says which.
var errBadLogin = errors.New("wrong name or password, or the operator is disabled")

// Authenticate checks name and password, and records the login time of a success.
func (o *Operators) Authenticate(ctx context.Context, name, password string) (Operator, error) {
	var row struct {
		Operator
		Hash string `db:"password_hash"`
	}
	err := o.db.GetContext(ctx, &row, `SELECT name, role, created_at, disabled_at, last_login_at, password_hash
		FROM console_operators WHERE name = $1`, name)
	if errors.Is(err, sql.ErrNoRows) {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password)) //nolint:errcheck // for the time it takes
		return Operator{}, errBadLogin
	}
	if err != nil {
		return Operator{}, fmt.Errorf("find operator: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(row.Hash), []byte(password)) != nil || row.DisabledAt.Valid {
		return Operator{}, errBadLogin
	}
	if _, err := o.db.ExecContext(ctx, `UPDATE console_operators SET last_login_at = now() WHERE name = $1`, name); err != nil {
		return Operator{}, fmt.Errorf("record login: %w", err)
	}
	return row.Operator, nil
}
