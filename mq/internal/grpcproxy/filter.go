package grpcproxy

import (
	"fmt"
	"strings"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/tide-run/tide/mq/internal/sql92"
	"github.com/tide-run/tide/mq/message"
)

// filter is a subscription's expression: tags ("a || b", "*") or a SQL92 selector over the message's properties.
type filter struct {
	all  bool
	tags map[string]bool
	sql  *sql92.Expr
}

func compileFilter(fe *v2.FilterExpression) (*filter, error) {
	expr := strings.TrimSpace(fe.GetExpression())
	if fe.GetType() == v2.FilterType_SQL {
		if expr == "" {
			return nil, fmt.Errorf("SQL92 expression is empty")
		}
		e, err := sql92.Compile(expr)
		if err != nil {
			return nil, err
		}
		return &filter{sql: e}, nil
	}
	f := &filter{tags: map[string]bool{}}
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t == "*" {
			f.all = true
		} else if t != "" {
			f.tags[t] = true
		}
	}
	if len(f.tags) == 0 {
		f.all = true
	}
	return f, nil
}

func (f *filter) match(m *message.Message) bool {
	if f.sql != nil {
		return f.sql.Match(sql92.Encoded(m.Properties))
	}
	return f.all || f.tags[message.Property(m.Properties, message.PropTags)]
}
