package receiver

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// secretName matches the names of what a caller must not learn byte by
// byte from how long a comparison takes: tokens, signatures, digests,
// HMACs, secrets and passwords.
var secretName = regexp.MustCompile(`(?i)(token|signature|sig|digest|hmac|secret|password|passwd|\bmac\b)`)

// TestSecretsAreComparedInConstantTime reads the package's source and
// fails on a comparison that could leak a secret through its timing: ==
// or != between a value named like a secret and anything but a constant
// (an emptiness check tells nothing), and bytes.Equal, strings.EqualFold
// or reflect.DeepEqual on such a value. Every Receiver type's check goes
// through sameToken (subtle.ConstantTimeCompare) or checkHMAC
// (hmac.Equal), and a new type that compares with == fails here.
func TestSecretsAreComparedInConstantTime(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if n.Op != token.EQL && n.Op != token.NEQ {
					return true
				}
				if isConstant(n.X) || isConstant(n.Y) {
					return true
				}
				if secretName.MatchString(exprName(n.X)) || secretName.MatchString(exprName(n.Y)) {
					t.Errorf("%s: %s %s %s compares a secret in variable time: use sameToken or checkHMAC",
						fset.Position(n.Pos()), exprName(n.X), n.Op, exprName(n.Y))
				}
			case *ast.CallExpr:
				fn := exprName(n.Fun)
				if fn != "bytes.Equal" && fn != "strings.EqualFold" && fn != "reflect.DeepEqual" && fn != "strings.Compare" && fn != "bytes.Compare" {
					return true
				}
				for _, arg := range n.Args {
					if secretName.MatchString(exprName(arg)) {
						t.Errorf("%s: %s(%s) compares a secret in variable time: use sameToken or checkHMAC", fset.Position(n.Pos()), fn, exprName(arg))
					}
				}
			}
			return true
		})
	}
	if checked < len(senders(deps{})) {
		t.Fatalf("read %d files, fewer than the %d Receiver types: the test reads the wrong folder", checked, len(senders(deps{})))
	}
}

// isConstant reports whether e is a literal, nil, or a named constant
// such as a length: comparing with one tells a caller nothing secret.
func isConstant(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return e.Name == "nil" || e.Name == "true" || e.Name == "false"
	case *ast.CallExpr:
		// len(x) == len(y) compares lengths, which a caller knows.
		if id, ok := e.Fun.(*ast.Ident); ok && id.Name == "len" {
			return true
		}
	}
	return false
}

// exprName is how an expression reads in the source, enough to match a
// secret's name: identifiers, selectors, calls, indexes and conversions.
func exprName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprName(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		var args []string
		for _, a := range e.Args {
			args = append(args, exprName(a))
		}
		return exprName(e.Fun) + "(" + strings.Join(args, ", ") + ")"
	case *ast.IndexExpr:
		return exprName(e.X) + "[" + exprName(e.Index) + "]"
	case *ast.StarExpr:
		return "*" + exprName(e.X)
	case *ast.ParenExpr:
		return exprName(e.X)
	case *ast.BasicLit:
		return e.Value
	case *ast.ArrayType:
		return "[]" + exprName(e.Elt)
	}
	return ""
}
