//! Constraint expressions: the `value` of a recipe constraint.
//!
//! Grammar (whitespace around tokens is ignored):
//! - `VALUE`: a bare value. When both it and the measured value are versions (see
//!   [`crate::version`]) the measured version must start with the given parts: `1.34` matches
//!   `v1.34.2-eks-abc`, `580.95.05` matches `580.95.5`. Otherwise strings are compared ignoring
//!   case and treating ` `, `-` and `_` alike (`NVIDIA-H100-80GB-HBM3` matches
//!   `NVIDIA H100 80GB HBM3`); `*` matches any run of characters.
//! - `OP VALUE` with `OP` one of `>=`, `>`, `<=`, `<`, `==`, `!=` (`=` is `==`). Ordering
//!   operators need versions on both sides; `==`/`!=` compare versions numerically (missing
//!   parts are zero) and other strings as bare values do.
//! - `CLAUSE, CLAUSE, ...`: a range; every clause must hold (`>= 1.32, < 1.36`). A value with
//!   commas is a range only when every part starts with an operator; otherwise it is one
//!   bare value.

use std::fmt;

use crate::version::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Ge | Op::Gt | Op::Le | Op::Lt)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// A bare value (see the module docs).
    Exact(String),
    Compare(Op, String),
}

/// A parsed constraint value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub clauses: Vec<Clause>,
}

/// The constraint value is not a valid expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid constraint value `{value}`: {message}")]
pub struct ExprError {
    pub value: String,
    pub message: String,
}

/// Split a leading operator off `s`.
fn split_op(s: &str) -> Option<(Op, &str)> {
    const OPS: &[(&str, Op)] = &[
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ];
    OPS.iter()
        .find_map(|(sym, op)| s.strip_prefix(sym).map(|rest| (*op, rest.trim())))
}

impl Expr {
    pub fn parse(value: &str) -> Result<Expr, ExprError> {
        let err = |message: String| ExprError {
            value: value.to_string(),
            message,
        };
        let text = value.trim();
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let is_range = parts.len() > 1 && parts.iter().all(|p| split_op(p).is_some());
        let pieces = if is_range { parts } else { vec![text] };
        let mut clauses = Vec::new();
        for piece in pieces {
            match split_op(piece) {
                Some((op, operand)) => {
                    if operand.is_empty() {
                        return Err(err(format!(
                            "`{}` needs a value after it, e.g. `{} 1.32`",
                            op.symbol(),
                            op.symbol()
                        )));
                    }
                    if split_op(operand).is_some() {
                        return Err(err(format!(
                            "`{piece}` has two operators; separate range clauses with commas"
                        )));
                    }
                    if op.is_ordering() && Version::parse(operand).is_none() {
                        return Err(err(format!(
                            "`{}` compares versions but `{operand}` is not a version",
                            op.symbol()
                        )));
                    }
                    clauses.push(Clause::Compare(op, operand.to_string()));
                }
                None => clauses.push(Clause::Exact(piece.to_string())),
            }
        }
        Ok(Expr { clauses })
    }

    /// Whether `actual` satisfies every clause; the error explains a failure.
    pub fn check(&self, actual: &str) -> Result<(), String> {
        for clause in &self.clauses {
            check_clause(clause, actual)?;
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: Vec<String> = self
            .clauses
            .iter()
            .map(|c| match c {
                Clause::Exact(v) => v.clone(),
                Clause::Compare(op, v) => format!("{} {v}", op.symbol()),
            })
            .collect();
        f.write_str(&s.join(", "))
    }
}

fn check_clause(clause: &Clause, actual: &str) -> Result<(), String> {
    match clause {
        Clause::Exact(expected) => {
            let ok = match (Version::parse(expected), Version::parse(actual)) {
                (Some(e), Some(a)) if !expected.contains('*') => a.has_prefix(&e),
                _ => string_matches(expected, actual),
            };
            if ok {
                Ok(())
            } else {
                Err(format!("`{actual}` is not `{expected}`"))
            }
        }
        Clause::Compare(op, expected) => {
            let e = Version::parse(expected);
            let a = Version::parse(actual);
            let ok = match (op, e, a) {
                (_, Some(e), Some(a)) => match op {
                    Op::Ge => a >= e,
                    Op::Gt => a > e,
                    Op::Le => a <= e,
                    Op::Lt => a < e,
                    Op::Eq => a == e,
                    Op::Ne => a != e,
                },
                (Op::Eq, _, _) => string_matches(expected, actual),
                (Op::Ne, _, _) => !string_matches(expected, actual),
                (_, _, None) => {
                    return Err(format!(
                        "`{actual}` is not a version, so it cannot be compared with `{} {expected}`",
                        op.symbol()
                    ));
                }
                // Ordering operands are checked at parse time.
                (_, None, Some(_)) => false,
            };
            if ok {
                Ok(())
            } else {
                Err(format!("`{actual}` is not {} {expected}", op.symbol()))
            }
        }
    }
}

fn normalize(s: &str) -> Vec<char> {
    s.trim()
        .chars()
        .map(|c| match c {
            '-' | '_' => ' ',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Case-insensitive equality treating ` `, `-` and `_` alike, with `*` as a wildcard.
pub fn string_matches(pattern: &str, actual: &str) -> bool {
    let p = normalize(pattern);
    let a = normalize(actual);
    wildcard(&p, &a)
}

/// Iterative `*` matching (linear backtracking; no recursion on user input).
fn wildcard(p: &[char], a: &[char]) -> bool {
    let (mut pi, mut ai) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ai < a.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == a[ai] {
            pi += 1;
            ai += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ai));
            pi += 1;
        } else if let Some((sp, sa)) = star {
            pi = sp + 1;
            ai = sa + 1;
            star = Some((sp, sa + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (constraint value, actual, expected outcome)
    const CASES: &[(&str, &str, bool)] = &[
        // Kubernetes versions, v-prefixed and vendor-suffixed.
        (">= 1.32", "v1.34.2", true),
        (">= 1.32.4", "v1.32.3", false),
        (">= 1.32.4", "v1.32.4-eks-abc", true),
        (">=1.32", "v1.34.2-eks-abc", true),
        ("> 1.34.2", "v1.34.2-eks-abc", false),
        ("> 1.34.1", "v1.34.2-gke.100", true),
        ("< 1.36", "v1.35.9", true),
        ("< 1.36", "v1.36.0", false),
        ("<= 1.36", "v1.36.0", true),
        (">= 1.32, < 1.36", "v1.34.4", true),
        (">= 1.32, < 1.36", "v1.36.1", false),
        (">= 1.32, < 1.36", "v1.31.9", false),
        (">=1.32,<1.36", "1.33", true),
        // Kernels: numeric dotted/dashed parts.
        (">= 6.8", "6.8.0-1015-aws", true),
        (">= 6.8.0-1016", "6.8.0-1015-aws", false),
        ("> 6.8.0", "6.8.0-1015-aws", true),
        ("< 5.15.0-100", "5.15.0-1063-nvidia", false),
        ("== 6.8.0-1015", "6.8.0-1015-aws", true),
        ("!= 6.8.0-1015", "6.8.0-1015-aws", false),
        // Drivers and distributions.
        (">= 580.95.05", "580.95.05", true),
        (">= 580.95.05", "580.82.07", false),
        ("580.95.05", "580.95.05", true),
        ("580", "580.95.05", true),
        ("580.95", "580.82.07", false),
        ("== 22.04", "22.04", true),
        ("22.04", "24.04", false),
        ("== 12.4", "12.4.0", true),
        ("!= 12.4", "12.8", true),
        // Bare versions pin the given parts.
        ("1.34", "v1.34.2", true),
        ("1.34.0", "1.34", true),
        ("1.34.2", "1.34", false),
        // Strings.
        ("ubuntu", "ubuntu", true),
        ("Ubuntu", "ubuntu", true),
        ("ubuntu", "rhel", false),
        ("NVIDIA H100 80GB HBM3", "NVIDIA-H100-80GB-HBM3", true),
        ("*H100*", "NVIDIA H100 80GB HBM3", true),
        ("*H100*", "NVIDIA A100-SXM4-80GB", false),
        ("NVIDIA H100*", "NVIDIA H200", false),
        ("enabled", "disabled", false),
        ("== loaded", "loaded", true),
        ("!= enabled", "disabled", true),
        ("= disabled", "disabled", true),
        // A comma inside a bare value is not a range.
        ("a, b", "a, b", true),
        ("a, b", "a", false),
        // Ordering against a non-version actual fails.
        (">= 1.32", "unknown", false),
    ];

    #[test]
    fn table() {
        for (value, actual, want) in CASES {
            let expr = Expr::parse(value).unwrap_or_else(|e| panic!("{value}: {e}"));
            let got = expr.check(actual);
            assert_eq!(got.is_ok(), *want, "`{value}` vs `{actual}`: {got:?}");
        }
    }

    #[test]
    fn failure_messages_name_both_sides() {
        let e = Expr::parse(">= 1.32").unwrap();
        let msg = e.check("v1.31.0").unwrap_err();
        assert!(msg.contains("v1.31.0") && msg.contains(">= 1.32"), "{msg}");
        let msg = e.check("n/a").unwrap_err();
        assert!(msg.contains("not a version"), "{msg}");
    }

    #[test]
    fn invalid_expressions() {
        for bad in [">=", ">= abc", "< ", "> >= 1", ">= 1.2, <"] {
            let err = Expr::parse(bad).expect_err(bad);
            assert_eq!(err.value, bad);
        }
    }

    #[test]
    fn display_round_trips() {
        let e = Expr::parse(">=1.32,<1.36").unwrap();
        assert_eq!(e.to_string(), ">= 1.32, < 1.36");
        assert_eq!(Expr::parse(&e.to_string()).unwrap(), e);
    }

    #[test]
    fn wildcard_has_no_blowup() {
        let pattern = "*a".repeat(50);
        let actual = "a".repeat(10_000) + "b";
        assert!(!string_matches(&pattern, &actual));
        assert!(string_matches("*", ""));
        assert!(string_matches("a*c", "abbbc"));
        assert!(!string_matches("a*c", "abbbd"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary constraint values and measurements never panic.
        #[test]
        fn never_panics(value in ".{0,40}", actual in ".{0,40}") {
            if let Ok(e) = Expr::parse(&value) {
                let _ = e.check(&actual);
            }
        }

        /// For dotted versions, `>=` and `<` partition every pair.
        #[test]
        fn ge_and_lt_are_complements(a in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}", b in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}") {
            let ge = Expr::parse(&format!(">= {b}")).unwrap().check(&a).is_ok();
            let lt = Expr::parse(&format!("< {b}")).unwrap().check(&a).is_ok();
            prop_assert!(ge != lt);
        }
    }
}
