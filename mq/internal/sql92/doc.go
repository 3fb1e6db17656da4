// Package sql92 compiles and evaluates RocketMQ's SQL92 message selectors (MessageSelector.bySql), the property
// filter a consumer subscribes with when its expressionType is SQL92.
//
// The language is Apache RocketMQ's subset (org.apache.rocketmq.filter, itself trimmed from ActiveMQ's JMS
// selector): comparisons (=, <>, >, >=, <, <=), BETWEEN / NOT BETWEEN, IN / NOT IN over string lists, IS [NOT] NULL,
// CONTAINS / STARTSWITH / ENDSWITH and their NOT forms, AND / OR / NOT with parentheses, unary minus, TRUE, FALSE,
// NULL, integer (optional L suffix) and floating literals, and single-quoted strings (two quotes in a row stand for one).
// Keywords are case-insensitive; property names are [A-Za-z_$][A-Za-z0-9_$]* and case-sensitive. Comments (-- to
// end of line, /* ... */) are skipped.
//
// Evaluation follows the Java broker, quirks included, so a selector moves between tide and a RocketMQ cluster
// with the same meaning:
//   - properties are strings; a comparison with a number or boolean converts the property to the other side's
//     type (Integer for literals in int32 range, Long beyond, Double for floats) and two strings compared with
//     < > <= >= are both read as doubles;
//   - CONTAINS, STARTSWITH, ENDSWITH and their NOT forms are FALSE for a missing property or an empty search
//     string (so NOT (a CONTAINS 'x') matches when a is missing, a NOT CONTAINS 'x' does not);
//   - a missing property makes any other comparison unknown (null), and only a TRUE result matches; AND, OR and NOT use
//     three-valued logic (FALSE AND unknown is FALSE, TRUE OR unknown is TRUE, NOT unknown is unknown); the one
//     asymmetry is Java's equality: a = 'x' with a missing is unknown, but 'x' = a is FALSE;
//   - a conversion that fails (a="abc" in a > 1) aborts the whole evaluation, and the message does not match
//     (Java throws and ExpressionMessageFilter treats the exception as "not matched").
//
// Invariants: Compile never panics and returns a *ParseError (wrapping ErrSyntax) with a byte position for every
// rejected input; a compiled *Expr is immutable and safe for concurrent use; Match never panics and does not
// allocate for the common operators.
package sql92
