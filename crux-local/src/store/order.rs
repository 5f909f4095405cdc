//! The total order Convex uses for values in indexes and sorts.

use std::cmp::Ordering;

use serde_json::Value;

/// Rank of a value's type in Convex's order: a missing field (`undefined`) sorts first, then
/// null, numbers, booleans, strings, arrays and objects.
fn rank(value: Option<&Value>) -> u8 {
    match value {
        None => 0,
        Some(Value::Null) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::Bool(_)) => 3,
        Some(Value::String(_)) => 4,
        Some(Value::Array(_)) => 5,
        Some(Value::Object(_)) => 6,
    }
}

/// Compares two field values (`None` = the field is missing) in Convex's order.
pub(crate) fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let by_rank = rank(a).cmp(&rank(b));
    if by_rank != Ordering::Equal {
        return by_rank;
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for (l, r) in x.iter().zip(y) {
                let ord = compare(Some(l), Some(r));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            x.len().cmp(&y.len())
        }
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            for ((lk, lv), (rk, rv)) in x.iter().zip(y) {
                let ord = lk.cmp(rk).then_with(|| compare(Some(lv), Some(rv)));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn types_sort_in_convex_order_and_values_within_a_type() {
        let ordered = [
            None,
            Some(json!(null)),
            Some(json!(-1.5)),
            Some(json!(2)),
            Some(json!(false)),
            Some(json!(true)),
            Some(json!("a")),
            Some(json!("b")),
            Some(json!([1])),
            Some(json!([1, 2])),
            Some(json!({"a": 1})),
        ];
        for pair in ordered.windows(2) {
            assert_eq!(
                compare(pair[0].as_ref(), pair[1].as_ref()),
                Ordering::Less,
                "{:?} < {:?}",
                pair[0],
                pair[1]
            );
            assert_eq!(
                compare(pair[1].as_ref(), pair[0].as_ref()),
                Ordering::Greater
            );
        }
        assert_eq!(compare(Some(&json!(2)), Some(&json!(2.0))), Ordering::Equal);
    }
}
