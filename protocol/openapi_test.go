package protocol_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// openAPIPath documents the HTTP routes that routeSources register.
const openAPIPath = "openapi.yaml"

// routeSources are the packages whose Echo route registrations the OpenAPI
// document must list: the server's API and the browser client's assets.
var routeSources = []string{"../server", "../web"}

// httpMethods are the Echo registration methods the scan recognises.
var httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// route is one registration found in the Go sources: a method and a path
// pattern. Parts of the path the scan cannot evaluate (a loop variable)
// become the wildcard "[^/]+"; Echo parameters (:room, *) become param.
type route struct {
	method  string
	pattern *regexp.Regexp
	where   string
}

// param stands for a path parameter in both Echo and OpenAPI paths.
const param = "\x00"

// echoParam matches Echo's :name and * path parameters.
var echoParam = regexp.MustCompile(`:[A-Za-z_][A-Za-z0-9_]*|\*`)

// openAPIParam matches OpenAPI's {name} path parameters.
var openAPIParam = regexp.MustCompile(`\{[^}]+\}`)

// scanRoutes parses every non-test Go file of dir and returns its Echo
// route registrations: calls X.GET(path, …) and friends whose path is a
// string literal, a string constant, a local variable assigned one of
// those, or a concatenation of them, prefixed by the group X was made with
// (X := e.Group("/prefix", …)).
func scanRoutes(t *testing.T, dir string) []route {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	consts := map[string]ast.Expr{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, file)
		for _, d := range file.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							consts[n.Name] = vs.Values[i]
						}
					}
				}
			}
		}
	}
	var routes []route
	for _, file := range parsed {
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			locals := map[string]ast.Expr{} // variable → the expression assigned
			groups := map[string]string{}   // group variable → its path prefix
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.AssignStmt:
					for i, lhs := range n.Lhs {
						id, ok := lhs.(*ast.Ident)
						if !ok || i >= len(n.Rhs) {
							continue
						}
						locals[id.Name] = n.Rhs[i]
						if call, ok := n.Rhs[i].(*ast.CallExpr); ok {
							if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Group" && len(call.Args) > 0 {
								groups[id.Name] = evalPath(call.Args[0], consts, locals)
							}
						}
					}
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if !ok || !slices.Contains(httpMethods, sel.Sel.Name) || len(n.Args) < 2 {
						return true
					}
					prefix := ""
					if x, ok := sel.X.(*ast.Ident); ok {
						prefix = groups[x.Name]
					}
					path := prefix + evalPath(n.Args[0], consts, locals)
					routes = append(routes, route{
						method:  strings.ToLower(sel.Sel.Name),
						pattern: regexp.MustCompile("^" + path + "$"),
						where:   fset.Position(n.Pos()).String(),
					})
				}
				return true
			})
		}
	}
	return routes
}

// evalPath renders a path expression as a regular expression: literal text
// quoted, Echo parameters as param, anything unknown as "[^/]+".
func evalPath(e ast.Expr, consts, locals map[string]ast.Expr) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		if s, err := strconv.Unquote(e.Value); err == nil && e.Kind == token.STRING {
			return regexp.QuoteMeta(echoParam.ReplaceAllString(s, param))
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			return evalPath(e.X, consts, locals) + evalPath(e.Y, consts, locals)
		}
	case *ast.Ident:
		if v, ok := locals[e.Name]; ok {
			return evalPath(v, consts, locals)
		}
		if v, ok := consts[e.Name]; ok {
			return evalPath(v, consts, nil)
		}
	case *ast.SelectorExpr: // a constant of another package: unknown text
	}
	return "[^/]+"
}

// TestOpenAPIListsEveryRoute: the OpenAPI document parses, is version 3.1,
// and its paths and methods are exactly the routes registered in the Go
// sources.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s does not parse: %v", openAPIPath, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi version %q, want 3.1.x", doc.OpenAPI)
	}
	type op struct{ method, path string }
	var documented []op
	for path, methods := range doc.Paths {
		for m := range methods {
			if slices.Contains(httpMethods, strings.ToUpper(m)) {
				documented = append(documented, op{m, openAPIParam.ReplaceAllString(path, param)})
			}
		}
	}
	var routes []route
	for _, dir := range routeSources {
		routes = append(routes, scanRoutes(t, dir)...)
	}
	if len(routes) < 10 {
		t.Fatalf("found only %d route registrations in %v: has the scan gone stale?", len(routes), routeSources)
	}
	for _, r := range routes {
		found := false
		for _, d := range documented {
			found = found || (d.method == r.method && r.pattern.MatchString(d.path))
		}
		if !found {
			t.Errorf("%s: %s %s is not in %s", r.where, strings.ToUpper(r.method), strings.ReplaceAll(r.pattern.String(), param, "{param}"), openAPIPath)
		}
	}
	for _, d := range documented {
		found := false
		for _, r := range routes {
			found = found || (d.method == r.method && r.pattern.MatchString(d.path))
		}
		if !found {
			t.Errorf("%s documents %s %s, which no source in %v registers", openAPIPath, strings.ToUpper(d.method), strings.ReplaceAll(d.path, param, "{param}"), routeSources)
		}
	}
	// Every $ref in the document resolves.
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, ref := range collectRefs(raw) {
		file, pointer, _ := strings.Cut(ref, "#")
		target := any(raw)
		if file != "" {
			target = readJSONObject(t, file)
		}
		if resolvePointer(target, pointer) == nil {
			t.Errorf("$ref %q does not resolve", ref)
		}
	}
}
