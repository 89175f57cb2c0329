package ml

// Interaction is one event (the definition ml/online.go brings; this
// placeholder goes when that lands).
type Interaction struct {
	User, Item []byte
	Weight     float32
}
