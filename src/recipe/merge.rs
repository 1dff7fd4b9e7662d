//! Deep merge of configuration values: maps merge key by key, anything else is replaced by
//! the later layer. `null` in a later layer deletes the key, as in Helm.

use serde_json::Value;

pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                    continue;
                }
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_layer_wins_for_scalars_and_lists() {
        let mut base = json!({"driver": {"version": "570", "enabled": true}, "args": [1, 2]});
        deep_merge(
            &mut base,
            &json!({"driver": {"version": "580"}, "args": [3]}),
        );
        assert_eq!(
            base,
            json!({"driver": {"version": "580", "enabled": true}, "args": [3]})
        );
    }

    #[test]
    fn null_removes_a_key() {
        let mut base = json!({"a": 1, "b": {"c": 2}});
        deep_merge(&mut base, &json!({"b": null}));
        assert_eq!(base, json!({"a": 1}));
    }

    #[test]
    fn map_replaces_scalar_and_vice_versa() {
        let mut base = json!({"a": 1, "b": {"c": 2}});
        deep_merge(&mut base, &json!({"a": {"x": 1}, "b": "flat"}));
        assert_eq!(base, json!({"a": {"x": 1}, "b": "flat"}));
    }

    #[test]
    fn merging_into_null_takes_overlay() {
        let mut base = Value::Null;
        deep_merge(&mut base, &json!({"a": 1}));
        assert_eq!(base, json!({"a": 1}));
    }
}
