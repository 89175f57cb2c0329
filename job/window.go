package job

import (
	"errors"

	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec"
)

// WindowSpec is a window step. (Placeholder until the windows package lands.)
type WindowSpec struct{}

func parseWindowStep(file string, num int, val *yaml.Node) (*WindowSpec, error) {
	return nil, &Error{File: file, Line: val.Line, Msg: "window steps are not supported yet"}
}

func planWindow(g *arrowexec.Graph, name string, in arrowexec.Input, par int, w *WindowSpec) (*arrowexec.Node, error) {
	return nil, errors.New("window steps are not supported yet")
}
