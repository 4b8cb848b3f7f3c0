//! The canonical JSON a plan's seal covers, written straight from the typed plan: the same bytes as
//! [`super::canonical_content`] over `serde_json::to_value(plan)`, without building that value (at
//! a million users the value tree of a plan is several times the size of its JSON).
//!
//! Objects are written with their keys sorted (each object's fields are gathered, then written in
//! order); arrays and scalars stream. At the top level the fields are written one at a time, in
//! key order, by serializing the value once per field and keeping only that field, so the largest
//! field (the actions) is never held apart from the output.

use std::borrow::Cow;
use std::io::Write;

use serde::ser::{self, Impossible, Serialize};

/// Why a value has no canonical JSON (as `serde_json::to_value` would fail).
#[derive(Debug)]
pub(super) struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(e.to_string())
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Writes the canonical JSON of `value` (an object at the top level: a struct or a map) to `out`,
/// leaving out the top-level keys in `skip`.
///
/// # Errors
/// `out` fails, or the value is not an object or holds what JSON cannot (a non-string map key).
pub(super) fn write<T: Serialize + ?Sized, W: Write>(
    value: &T,
    skip: &[&str],
    out: &mut W,
) -> Result<()> {
    // First pass: the top-level keys, in the order they come.
    let mut keys = Vec::new();
    value.serialize(TopLevel::<W> {
        mode: Mode::Keys(&mut keys),
    })?;
    keys.retain(|k| !skip.contains(&k.as_str()));
    keys.sort();
    keys.dedup();
    out.write_all(b"{")?;
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_str(out, key)?;
        out.write_all(b":")?;
        // One pass per key; the field's value is the last one given that key (as in a JSON value,
        // where a later key replaces an earlier one).
        let mut n = 0usize;
        value.serialize(TopLevel::<W> {
            mode: Mode::Count(key, &mut n),
        })?;
        value.serialize(TopLevel {
            mode: Mode::Write {
                key,
                nth: n,
                seen: 0,
                out: &mut *out,
            },
        })?;
    }
    out.write_all(b"}")?;
    Ok(())
}

fn write_str<W: Write + ?Sized>(out: &mut W, s: &str) -> Result<()> {
    serde_json::to_writer(out, s).map_err(|e| Error(e.to_string()))
}

fn write_scalar<W: Write + ?Sized>(out: &mut W, v: &serde_json::Value) -> Result<()> {
    serde_json::to_writer(out, v).map_err(|e| Error(e.to_string()))
}

enum Mode<'a, W: Write> {
    /// Collect the keys.
    Keys(&'a mut Vec<String>),
    /// Count how often a key comes.
    Count(&'a str, &'a mut usize),
    /// Write the value of the `nth` field with this key.
    Write {
        key: &'a str,
        nth: usize,
        seen: usize,
        out: &'a mut W,
    },
}

/// The top-level object: one of the passes of [`write`].
struct TopLevel<'a, W: Write> {
    mode: Mode<'a, W>,
}

impl<W: Write> TopLevel<'_, W> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        match &mut self.mode {
            Mode::Keys(keys) => keys.push(key.to_string()),
            Mode::Count(k, n) => {
                if *k == key {
                    **n += 1;
                }
            }
            Mode::Write {
                key: k,
                nth,
                seen,
                out,
            } => {
                if *k == key {
                    *seen += 1;
                    if *seen == *nth {
                        value.serialize(Canonical { out: &mut **out })?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn not_an_object() -> Error {
    Error("a plan's canonical content must be a JSON object".into())
}

impl<'a, W: Write> ser::Serializer for TopLevel<'a, W> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = TopMap<'a, W>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, _: bool) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_i8(self, _: i8) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_i16(self, _: i16) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_i32(self, _: i32) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_i64(self, _: i64) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_u8(self, _: u8) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_u16(self, _: u16) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_u32(self, _: u32) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_u64(self, _: u64) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_f32(self, _: f32) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_f64(self, _: f64) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_char(self, _: char) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_str(self, _: &str) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_none(self) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<()> {
        Err(not_an_object())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(not_an_object())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(not_an_object())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(not_an_object())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(not_an_object())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Ok(TopMap {
            top: self,
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(not_an_object())
    }
}

impl<W: Write> ser::SerializeStruct for TopLevel<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.field(key, v)
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

struct TopMap<'a, W: Write> {
    top: TopLevel<'a, W>,
    key: Option<String>,
}

impl<W: Write> ser::SerializeMap for TopMap<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(MapKey)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a value without a key".into()))?;
        self.top.field(&key, v)
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

/// Writes any value canonically: objects gathered and sorted, the rest streamed.
struct Canonical<'a, W: Write + ?Sized> {
    out: &'a mut W,
}

impl<'a, W: Write + ?Sized> Canonical<'a, W> {
    fn scalar(self, v: serde_json::Value) -> Result<()> {
        write_scalar(self.out, &v)
    }

    /// `{"variant":` … `}` around an externally tagged enum's content.
    fn tagged(self, variant: &str) -> Result<&'a mut W> {
        self.out.write_all(b"{")?;
        write_str(self.out, variant)?;
        self.out.write_all(b":")?;
        Ok(self.out)
    }
}

impl<'a, W: Write + ?Sized> ser::Serializer for Canonical<'a, W> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Array<'a, W>;
    type SerializeTuple = Array<'a, W>;
    type SerializeTupleStruct = Array<'a, W>;
    type SerializeTupleVariant = Array<'a, W>;
    type SerializeMap = Object<'a, W>;
    type SerializeStruct = Object<'a, W>;
    type SerializeStructVariant = Object<'a, W>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.scalar(v.into())
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.scalar(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.scalar(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.scalar(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.scalar(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.scalar(serde_json::to_value(v).map_err(|e| Error(e.to_string()))?)
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.scalar(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.scalar(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.scalar(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.scalar(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.scalar(serde_json::to_value(v).map_err(|e| Error(e.to_string()))?)
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.scalar(serde_json::to_value(v).map_err(|e| Error(e.to_string()))?)
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.scalar(serde_json::to_value(v).map_err(|e| Error(e.to_string()))?)
    }
    fn serialize_char(self, v: char) -> Result<()> {
        let mut buf = [0u8; 4];
        write_str(self.out, v.encode_utf8(&mut buf))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        write_str(self.out, v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<()> {
        self.out.write_all(b"null")?;
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        write_str(self.out, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<()> {
        let out = self.tagged(variant)?;
        v.serialize(Canonical { out: &mut *out })?;
        out.write_all(b"}")?;
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'a, W>> {
        self.out.write_all(b"[")?;
        Ok(Array {
            out: self.out,
            first: true,
            tagged: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'a, W>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Array<'a, W>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Array<'a, W>> {
        let out = self.tagged(variant)?;
        out.write_all(b"[")?;
        Ok(Array {
            out,
            first: true,
            tagged: true,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a, W>> {
        Ok(Object {
            out: self.out,
            fields: Vec::new(),
            values: Vec::new(),
            key: None,
            tagged: false,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Object<'a, W>> {
        Ok(Object {
            out: self.out,
            fields: Vec::with_capacity(len),
            values: Vec::new(),
            key: None,
            tagged: false,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Object<'a, W>> {
        let out = self.tagged(variant)?;
        Ok(Object {
            out,
            fields: Vec::with_capacity(len),
            values: Vec::new(),
            key: None,
            tagged: true,
        })
    }
}

struct Array<'a, W: Write + ?Sized> {
    out: &'a mut W,
    first: bool,
    /// Inside `{"variant":` (a tuple variant), closed by `end`.
    tagged: bool,
}

impl<W: Write + ?Sized> Array<'_, W> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        v.serialize(Canonical {
            out: &mut *self.out,
        })
    }

    fn close(self) -> Result<()> {
        self.out.write_all(if self.tagged { b"]}" } else { b"]" })?;
        Ok(())
    }
}

impl<W: Write + ?Sized> ser::SerializeSeq for Array<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.element(v)
    }
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl<W: Write + ?Sized> ser::SerializeTuple for Array<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.element(v)
    }
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl<W: Write + ?Sized> ser::SerializeTupleStruct for Array<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.element(v)
    }
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl<W: Write + ?Sized> ser::SerializeTupleVariant for Array<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.element(v)
    }
    fn end(self) -> Result<()> {
        self.close()
    }
}

/// An object: its fields gathered as (key, where its canonical value is in `values`), written
/// sorted by key on `end`.
struct Object<'a, W: Write + ?Sized> {
    out: &'a mut W,
    fields: Vec<(Cow<'static, str>, std::ops::Range<usize>)>,
    values: Vec<u8>,
    key: Option<String>,
    /// Inside `{"variant":` (a struct variant), closed by `end`.
    tagged: bool,
}

impl<W: Write + ?Sized> Object<'_, W> {
    fn field<T: Serialize + ?Sized>(&mut self, key: Cow<'static, str>, v: &T) -> Result<()> {
        let start = self.values.len();
        v.serialize(Canonical {
            out: &mut self.values,
        })?;
        self.fields.push((key, start..self.values.len()));
        Ok(())
    }

    fn close(mut self) -> Result<()> {
        // Stable, so that of two fields with one key the later comes last and is the one kept (a
        // JSON value keeps the last).
        self.fields.sort_by(|a, b| a.0.cmp(&b.0));
        self.out.write_all(b"{")?;
        let mut first = true;
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if self.fields.get(i + 1).is_some_and(|next| next.0 == *k) {
                continue;
            }
            if !std::mem::take(&mut first) {
                self.out.write_all(b",")?;
            }
            write_str(self.out, k)?;
            self.out.write_all(b":")?;
            self.out.write_all(&self.values[v.clone()])?;
        }
        self.out.write_all(if self.tagged { b"}}" } else { b"}" })?;
        Ok(())
    }
}

impl<W: Write + ?Sized> ser::SerializeMap for Object<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(MapKey)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a value without a key".into()))?;
        self.field(Cow::Owned(key), v)
    }
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl<W: Write + ?Sized> ser::SerializeStruct for Object<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.field(Cow::Borrowed(key), v)
    }
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl<W: Write + ?Sized> ser::SerializeStructVariant for Object<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.field(Cow::Borrowed(key), v)
    }
    fn end(self) -> Result<()> {
        self.close()
    }
}

/// A map key as a JSON value's key: a string, or a number, `bool` or unit variant written as one
/// (as `serde_json::to_value` does).
struct MapKey;

fn key_must_be_a_string() -> Error {
    Error("key must be a string".into())
}

impl ser::Serializer for MapKey {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_bool(self, v: bool) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, _: f32) -> Result<String> {
        Err(key_must_be_a_string())
    }
    fn serialize_f64(self, _: f64) -> Result<String> {
        Err(key_must_be_a_string())
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<String> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<String> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    fn streamed<T: Serialize>(v: &T, skip: &[&str]) -> String {
        let mut out = Vec::new();
        write(v, skip, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn via_value<T: Serialize>(v: &T) -> String {
        String::from_utf8(super::super::canonical_content(
            &serde_json::to_value(v).unwrap(),
        ))
        .unwrap()
    }

    #[derive(Serialize)]
    enum Kind {
        Unit,
        New(u32),
        Tuple(i8, String),
        Struct { z: Option<f64>, a: f32 },
    }

    #[derive(Serialize)]
    struct Inner {
        zeta: Vec<Kind>,
        alpha: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gone: Option<u8>,
        map: BTreeMap<u32, bool>,
        bytes: serde_bytes_like::Bytes,
        ch: char,
        unit: (),
    }

    mod serde_bytes_like {
        pub(super) struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    #[derive(Serialize)]
    struct Top {
        version: String,
        digest: String,
        actions: Vec<Inner>,
        big: u64,
        neg: i64,
        signature: Option<String>,
        #[serde(flatten)]
        extra: BTreeMap<String, serde_json::Value>,
    }

    #[test]
    fn the_streamed_content_is_byte_for_byte_the_value_s() {
        let inner = |s: &str| Inner {
            zeta: vec![
                Kind::Unit,
                Kind::New(7),
                Kind::Tuple(-3, format!("é\"\\\n\u{1}{s}")),
                Kind::Struct {
                    z: Some(1.5e300),
                    a: 0.1,
                },
                Kind::Struct {
                    z: Some(f64::NAN),
                    a: -0.0,
                },
            ],
            alpha: None,
            gone: None,
            map: [(10, true), (2, false)].into_iter().collect(),
            bytes: serde_bytes_like::Bytes(vec![0, 255]),
            ch: 'ø',
            unit: (),
        };
        let top = Top {
            version: "2.1".into(),
            digest: "d".into(),
            actions: vec![inner("x"), inner("</script>")],
            big: u64::MAX,
            neg: i64::MIN,
            signature: None,
            extra: [
                (
                    "b".to_string(),
                    serde_json::json!({"y": [1, {"d": "x", "c": null}], "x": true}),
                ),
                ("a".to_string(), serde_json::json!("é\"")),
                ("Z".to_string(), serde_json::json!(-0.25)),
            ]
            .into_iter()
            .collect(),
        };
        let want = via_value(&top);
        assert_eq!(streamed(&top, &["digest", "signature"]), want);
        assert!(!want.contains("\"digest\""), "{want}");
        // Without skipping: the same as the value's canonical form with every key.
        let mut all = Vec::new();
        super::super::write_canonical(&serde_json::to_value(&top).unwrap(), &mut all);
        assert_eq!(streamed(&top, &[]), String::from_utf8(all).unwrap());
    }

    #[test]
    fn json_values_stream_as_they_canonicalize() {
        let cases = [
            r#"{"b": {"y": [1, {"d": "x", "c": null}], "x": true}, "a": "é\"", "digest": "d", "signature": "s"}"#,
            r#"{}"#,
            r#"{"k": [], "j": {}, "i": [[[]]], "h": 1e-7, "g": 12345678901234567890, "f": -1}"#,
        ];
        for c in cases {
            let v: serde_json::Value = serde_json::from_str(c).unwrap();
            assert_eq!(
                streamed(&v, &["digest", "signature"]),
                String::from_utf8(super::super::canonical_content(&v)).unwrap(),
                "{c}"
            );
        }
        let mut out = Vec::new();
        assert!(write(&serde_json::json!([1]), &[], &mut out).is_err());
    }
}
