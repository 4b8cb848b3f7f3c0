//! Reading vendors' JSON into typed wire structs, leniently: a field that is absent, `null` or of
//! an unexpected type is absent (a blank string too), so that a record never fails a whole page
//! and `null` next to absent reads the same. Connectors derive `Deserialize` with
//! `#[serde(default)]` and these `deserialize_with` helpers; [`decode`] reads one record, which
//! cannot fail: what a record lacks is the connector's to report (its id and the reason).

use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One record as `T`; a record that is not even an object reads as `T::default()` (the
/// connector then reports what it lacks).
#[must_use]
pub fn decode<T: DeserializeOwned + Default>(v: &Value) -> T {
    T::deserialize(v).unwrap_or_default()
}

/// As [`decode`], from a record that is no longer needed: its strings are moved, not copied.
#[must_use]
pub fn decode_owned<T: DeserializeOwned + Default>(v: Value) -> T {
    T::deserialize(v).unwrap_or_default()
}

/// A string that is not blank; anything else is absent.
///
/// # Errors
/// Never (the value is read as any JSON).
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.trim().is_empty() => Some(s),
        _ => None,
    })
}

/// A string, blank or not; anything else is absent.
///
/// # Errors
/// Never.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// An object id: a string, or a number (OneLogin) as text.
///
/// # Errors
/// Never.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// `true` only for an explicit JSON `true`.
///
/// # Errors
/// Never.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Value::deserialize(d)?.as_bool() == Some(true))
}

/// A boolean when there is one (`Some(false)` differs from absent).
///
/// # Errors
/// Never.
pub fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(Value::deserialize(d)?.as_bool())
}

/// An integer, when there is one.
///
/// # Errors
/// Never.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Value::deserialize(d)?.as_i64())
}

/// A non-negative integer, when there is one (a count).
///
/// # Errors
/// Never.
pub fn unsigned<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Value::deserialize(d)?.as_u64())
}

/// A nested object as `T`; absent, `null` or not an object is `T::default()`.
///
/// # Errors
/// Never.
pub fn object<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(decode(&Value::deserialize(d)?))
}

/// A list of `T`; absent, `null` or not a list is empty.
///
/// # Errors
/// Never.
pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.iter().map(decode).collect(),
        _ => Vec::new(),
    })
}

/// An open map (custom attributes, a profile); absent, `null` or not an object is empty.
///
/// # Errors
/// Never.
pub fn map<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(m) => m,
        _ => Map::new(),
    })
}

/// An open map when there is one (`None`: absent, `null` or not an object).
///
/// # Errors
/// Never.
pub fn opt_map<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(m) => Some(m),
        _ => None,
    })
}

/// The non-blank strings of an open map, as attributes.
pub fn strings(m: &Map<String, Value>) -> impl Iterator<Item = (&String, &str)> {
    m.iter().filter_map(|(k, v)| match v {
        Value::String(s) if !s.trim().is_empty() => Some((k, s.as_str())),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, rename_all = "camelCase")]
    struct Person {
        #[serde(deserialize_with = "id")]
        id: Option<String>,
        #[serde(deserialize_with = "text")]
        primary_email: Option<String>,
        #[serde(deserialize_with = "flag")]
        suspended: bool,
        #[serde(deserialize_with = "object")]
        name: Name,
        #[serde(deserialize_with = "list")]
        orgs: Vec<Name>,
        #[serde(deserialize_with = "map")]
        custom: Map<String, Value>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Name {
        #[serde(deserialize_with = "text")]
        given: Option<String>,
    }

    #[test]
    fn null_absent_and_odd_types_read_the_same() {
        let bare: Person = decode(&json!({"id": 7}));
        let nulls: Person = decode(&json!({"id": 7, "primaryEmail": null, "suspended": null,
            "name": null, "orgs": null, "custom": null}));
        let odd: Person = decode(&json!({"id": 7, "primaryEmail": 5, "suspended": "yes",
            "name": "Ana", "orgs": {"given": "x"}, "custom": [1], "extra": {"deep": true}}));
        let blank: Person = decode(&json!({"id": 7, "primaryEmail": "  ", "name": {"given": ""}}));
        assert_eq!(bare.id.as_deref(), Some("7"));
        assert_eq!(bare, nulls);
        assert_eq!(bare, odd);
        assert_eq!(bare, blank);
        let not_an_object: Person = decode(&json!("ana@x.com"));
        assert_eq!(not_an_object, Person::default());
        let full: Person = decode(
            &json!({"id": "u1", "primaryEmail": "a@x.com", "suspended": true,
            "name": {"given": "Ana"}, "orgs": [{"given": null}, 3, {"given": "B"}],
            "custom": {"k": "v", "n": 1, "b": " "}}),
        );
        assert!(full.suspended);
        assert_eq!(full.name.given.as_deref(), Some("Ana"));
        assert_eq!(full.orgs.len(), 3);
        assert_eq!(full.orgs[2].given.as_deref(), Some("B"));
        assert_eq!(
            strings(&full.custom).collect::<Vec<_>>(),
            [(&"k".to_string(), "v")]
        );
    }
}
