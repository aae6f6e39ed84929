package api

import "time"

// CreateOperator is the body of POST /v1/operators (admin token).
type CreateOperator struct {
	Name string `json:"name"` // 1 to 63 of a-z, 0-9, '-' and '_'
}

// OperatorCreated answers POST /v1/operators: the operator's credential,
// "vop_NAME.SECRET", shown only this once (the gateway keeps a hash).
type OperatorCreated struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

// Operator is one node operator in GET /v1/operators.
type Operator struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Nodes   int       `json:"nodes"` // its nodes live now
}

// OperatorList answers GET /v1/operators.
type OperatorList struct {
	Operators []Operator `json:"operators"`
}
