//! Snapshot files: the normalized model as YAML or JSON (chosen by the file's extension), read by
//! `file` connectors and written by `idsync snapshot` and by `apply` on a file target.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::model::{Resolving, Snapshot};

/// A snapshot file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("cannot read snapshot file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot file {}{}: {message}", path.display(), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        at: Option<(usize, usize)>,
        message: String,
    },
    #[error("cannot write snapshot file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The serialization of a file, by extension: `.json` is JSON, anything else YAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    #[must_use]
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Reads a snapshot file.
///
/// # Errors
/// The file cannot be read or is not a snapshot (the error names the line and column).
pub fn read(path: &Path) -> Result<Snapshot, SnapshotFileError> {
    let bytes = std::fs::read(path).map_err(|source| SnapshotFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parses snapshot bytes as the format `path` names.
///
/// # Errors
/// As [`read`].
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Snapshot, SnapshotFileError> {
    // A byte-order mark (Windows editors write one) is not part of the first key.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match Format::of(path) {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| SnapshotFileError::Parse {
            path: path.to_path_buf(),
            at: Some((e.line(), e.column())),
            message: strip_location(&e.to_string()),
        }),
        Format::Yaml => yaml_serde::from_slice(bytes).map_err(|e| SnapshotFileError::Parse {
            path: path.to_path_buf(),
            at: e.location().map(|l| (l.line(), l.column())),
            message: strip_location(&e.to_string()),
        }),
    }
}

fn strip_location(msg: &str) -> String {
    msg.split(" at line ").next().unwrap_or(msg).to_string()
}

/// Writes a snapshot in the given format as it is serialized (a snapshot of a million users is
/// hundreds of MB, never held whole): the same bytes as [`to_string`].
///
/// # Errors
/// Writing fails.
pub fn write_to(snapshot: &Snapshot, format: Format, w: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *w, snapshot)?;
            w.write_all(b"\n")
        }
        Format::Yaml => yaml_serde::to_writer(&mut *w, snapshot).map_err(std::io::Error::other),
    }
}

/// Serializes a snapshot in the given format (what [`write_to`] writes).
#[must_use]
pub fn to_string(snapshot: &Snapshot, format: Format) -> String {
    let mut out = Vec::new();
    write_to(snapshot, format, &mut out).expect("snapshots serialize");
    String::from_utf8(out).expect("JSON and YAML are UTF-8")
}

/// Writes a file meant for people (a plan, a report, a snapshot) as [`replace_atomic`] does, with any
/// secret the process holds redacted from the content first.
///
/// # Errors
/// As [`replace_atomic`].
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<(), SnapshotFileError> {
    write_atomic_with(path, |w| w.write_all(content)).map(drop)
}

/// [`write_atomic`] for content written as it is made (`write` is given the file, buffered and
/// redacting): a plan of hundreds of MB is never held whole. Returns the file written, for reading
/// it back.
///
/// # Errors
/// As [`replace_atomic`], and whatever `write` returns.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut AtomicWriter<'_>) -> std::io::Result<()>,
) -> Result<std::fs::File, SnapshotFileError> {
    replace_atomic_with(path, |file| {
        let mut w = std::io::BufWriter::with_capacity(
            64 << 10,
            crate::config::secret::Redacting::new(file),
        );
        write(&mut w)?;
        w.flush()
    })
}

/// What [`write_atomic_with`] writes through: buffered (a serializer's many small writes stay
/// cheap), then redacted, into the temporary file.
pub type AtomicWriter<'f> =
    std::io::BufWriter<crate::config::secret::Redacting<&'f mut std::fs::File>>;

/// Replaces a file's content atomically, byte for byte: a temporary file in the same folder, flushed,
/// then renamed over the old one. A failure leaves the old file as it was. A symbolic link is written
/// through: the file it points to is replaced (atomically, in that file's folder) and the link stays.
/// For data idsync reads back (a file target, the journal), whose bytes must be what was hashed.
///
/// # Errors
/// The temporary file cannot be written or renamed, or `path` is a link that leads nowhere.
pub fn replace_atomic(path: &Path, content: &[u8]) -> Result<(), SnapshotFileError> {
    replace_atomic_with(path, |file| file.write_all(content)).map(drop)
}

/// [`replace_atomic`] with the content written by `write`; returns the file written.
fn replace_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<std::fs::File, SnapshotFileError> {
    let err = |source| SnapshotFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let resolved;
    let path = if path.is_symlink() {
        resolved = std::fs::canonicalize(path).map_err(|e| {
            err(std::io::Error::new(
                e.kind(),
                format!("it is a symbolic link whose target cannot be resolved ({e})"),
            ))
        })?;
        resolved.as_path()
    } else {
        path
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".idsync-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    write(tmp.as_file_mut()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))
}

/// Reads a snapshot file for a plan: as [`read`], with each group member resolved to a user index
/// as it is read (see [`Resolving`]), so that no string is kept per membership. A YAML file (hand
/// written, small) is read whole, then resolved.
///
/// # Errors
/// As [`read`], with the same messages.
pub fn read_resolving(path: &Path) -> Result<Resolving, SnapshotFileError> {
    let bytes = std::fs::read(path).map_err(|source| SnapshotFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_resolving(path, &bytes)
}

/// Parses snapshot bytes as [`read_resolving`] reads them.
///
/// # Errors
/// As [`parse`].
pub fn parse_resolving(path: &Path, bytes: &[u8]) -> Result<Resolving, SnapshotFileError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match Format::of(path) {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            serde::de::DeserializeSeed::deserialize(resolve::SnapshotSeed, &mut de)
                .and_then(|r| de.end().map(|()| r))
                .map_err(|e| SnapshotFileError::Parse {
                    path: path.to_path_buf(),
                    at: Some((e.line(), e.column())),
                    message: strip_location(&e.to_string()),
                })
        }
        Format::Yaml => parse(path, bytes).map(Resolving::of),
    }
}

/// The snapshot's own deserialization (the same fields, defaults, and errors as the derived one
/// of [`Snapshot`]), with users and group members fed to a [`Resolving`] as they come.
mod resolve {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;

    use crate::model::{Group, LeftOut, Resolving, User};

    const SNAPSHOT_FIELDS: &[&str] = &["users", "groups", "verified_domains", "skipped"];
    const GROUP_FIELDS: &[&str] = &["name", "id", "members"];

    #[derive(Deserialize)]
    #[serde(field_identifier, rename_all = "snake_case")]
    enum SnapshotField {
        Users,
        Groups,
        VerifiedDomains,
        Skipped,
    }

    #[derive(Deserialize)]
    #[serde(field_identifier, rename_all = "snake_case")]
    enum GroupField {
        Name,
        Id,
        Members,
    }

    pub(super) struct SnapshotSeed;

    impl<'de> DeserializeSeed<'de> for SnapshotSeed {
        type Value = Resolving;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Resolving, D::Error> {
            d.deserialize_struct("Snapshot", SNAPSHOT_FIELDS, SnapshotVisitor)
        }
    }

    struct SnapshotVisitor;

    impl<'de> Visitor<'de> for SnapshotVisitor {
        type Value = Resolving;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("struct Snapshot")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Resolving, A::Error> {
            let mut r = Resolving::new();
            if seq.next_element_seed(Users(&mut r))?.is_some()
                && seq.next_element_seed(Groups(&mut r))?.is_some()
            {
                if let Some(v) = seq.next_element::<Option<Vec<String>>>()? {
                    r.snapshot.verified_domains = v;
                    if let Some(s) = seq.next_element::<Vec<LeftOut>>()? {
                        r.snapshot.skipped = s;
                    }
                }
            }
            Ok(r)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Resolving, A::Error> {
            let mut r = Resolving::new();
            let mut seen = [false; 4];
            while let Some(field) = map.next_key::<SnapshotField>()? {
                let (i, name) = match field {
                    SnapshotField::Users => (0, "users"),
                    SnapshotField::Groups => (1, "groups"),
                    SnapshotField::VerifiedDomains => (2, "verified_domains"),
                    SnapshotField::Skipped => (3, "skipped"),
                };
                if std::mem::replace(&mut seen[i], true) {
                    return Err(de::Error::duplicate_field(name));
                }
                match field {
                    SnapshotField::Users => map.next_value_seed(Users(&mut r))?,
                    SnapshotField::Groups => map.next_value_seed(Groups(&mut r))?,
                    SnapshotField::VerifiedDomains => {
                        r.snapshot.verified_domains = map.next_value()?
                    }
                    SnapshotField::Skipped => r.snapshot.skipped = map.next_value()?,
                }
            }
            Ok(r)
        }
    }

    /// `users`: each user added as it is read.
    struct Users<'a>(&'a mut Resolving);

    impl<'de> DeserializeSeed<'de> for Users<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Users<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(u) = seq.next_element::<User>()? {
                self.0.add_user(u);
            }
            Ok(())
        }
    }

    /// `groups`: each group added as it is read, its members resolved one by one.
    struct Groups<'a>(&'a mut Resolving);

    impl<'de> DeserializeSeed<'de> for Groups<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Groups<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some((g, members)) = seq.next_element_seed(OneGroup(&mut *self.0))? {
                self.0.add_group(g, members);
            }
            Ok(())
        }
    }

    struct OneGroup<'a>(&'a mut Resolving);

    impl<'de> DeserializeSeed<'de> for OneGroup<'_> {
        type Value = (Group, Vec<u32>);
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_struct("Group", GROUP_FIELDS, self)
        }
    }

    impl<'de> Visitor<'de> for OneGroup<'_> {
        type Value = (Group, Vec<u32>);

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("struct Group")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let name: String = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(0, &"struct Group with 3 elements"))?;
            let id: Option<String> = seq.next_element()?.unwrap_or_default();
            let members = seq.next_element_seed(Members(self.0))?.unwrap_or_default();
            Ok((
                Group {
                    name,
                    id,
                    members: Vec::new(),
                },
                members,
            ))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut name: Option<String> = None;
            let mut id: Option<Option<String>> = None;
            let mut members: Option<Vec<u32>> = None;
            while let Some(field) = map.next_key::<GroupField>()? {
                match field {
                    GroupField::Name => {
                        if name.is_some() {
                            return Err(de::Error::duplicate_field("name"));
                        }
                        name = Some(map.next_value()?);
                    }
                    GroupField::Id => {
                        if id.is_some() {
                            return Err(de::Error::duplicate_field("id"));
                        }
                        id = Some(map.next_value()?);
                    }
                    GroupField::Members => {
                        if members.is_some() {
                            return Err(de::Error::duplicate_field("members"));
                        }
                        members = Some(map.next_value_seed(Members(&mut *self.0))?);
                    }
                }
            }
            let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
            Ok((
                Group {
                    name,
                    id: id.unwrap_or_default(),
                    members: Vec::new(),
                },
                members.unwrap_or_default(),
            ))
        }
    }

    /// A group's `members`: emails resolved as they are read, none kept.
    struct Members<'a>(&'a mut Resolving);

    impl<'de> DeserializeSeed<'de> for Members<'_> {
        type Value = Vec<u32>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<u32>, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Members<'_> {
        type Value = Vec<u32>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u32>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(i) = seq.next_element_seed(Member(&mut *self.0))? {
                out.push(i);
            }
            Ok(out)
        }
    }

    struct Member<'a>(&'a mut Resolving);

    impl<'de> DeserializeSeed<'de> for Member<'_> {
        type Value = u32;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u32, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for Member<'_> {
        type Value = u32;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
            Ok(self.0.member(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupNames, Indexed};

    /// The snapshot read whole then indexed, and read resolving: the same index, the same groups
    /// and users, the same unknown members in the same order.
    fn same_index(json: &str, target: bool) {
        let path = Path::new("snap.json");
        let whole = parse(path, json.as_bytes()).unwrap();
        let streamed = parse_resolving(path, json.as_bytes()).unwrap();
        let (a, b) = if target {
            (
                Indexed::new_target(whole),
                Indexed::resolved_target(streamed),
            )
        } else {
            (
                Indexed::with(whole, GroupNames::MayRepeat),
                Indexed::resolved(streamed, GroupNames::MayRepeat),
            )
        };
        match (a, b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.snapshot, b.snapshot, "{json}");
                assert_eq!(a.keys, b.keys);
                assert_eq!(a.members, b.members);
                assert_eq!(a.unknown_members, b.unknown_members);
                assert_eq!(a.shared_names, b.shared_names);
                for k in &a.keys {
                    assert_eq!(a.find(k), b.find(k));
                }
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{json}"),
            (a, b) => panic!("{json}: {a:?} but {b:?}"),
        }
    }

    #[test]
    fn members_resolve_while_reading_in_any_order_and_unknown_ones_are_kept() {
        // Groups before users: every member is looked up at the end.
        same_index(
            r#"{"groups": [{"members": ["B@x.com", "nobody@x.com", "a@x.com", "b@x.com", "nobody@x.com"], "name": "eng", "id": "g1"},
                           {"name": "ops", "members": [" A@X.COM "]}],
                "users": [{"email": "a@x.com"}, {"email": "B@x.com", "id": "u2"}],
                "skipped": [{"kind": "member", "name": "svc", "group": "eng", "reason": "not a user"}]}"#,
            false,
        );
        // Users first, a member listed before the user it names (in a later group), a member
        // named twice in two spellings, and an empty group.
        same_index(
            r#"{"users": [{"email": "a@x.com"}, {"email": "c@x.com"}],
                "groups": [{"name": "eng", "members": ["c@x.com", "C@x.com", "ghost@x.com"]},
                           {"name": "Eng", "id": "g2", "members": ["ghost@x.com"]},
                           {"name": "empty"}],
                "verified_domains": ["x.com"]}"#,
            false,
        );
        // A target: groups sharing a name (without regard to case) are set apart, and their
        // unknown members are not reported.
        same_index(
            r#"{"users": [{"email": "a@x.com"}],
                "groups": [{"name": "eng", "id": "g1", "members": ["a@x.com", "gone@x.com"]},
                           {"name": "ENG", "id": "g2", "members": ["other@x.com"]},
                           {"name": "ops", "id": "g3", "members": ["a@x.com", "later@x.com"]}]}"#,
            true,
        );
        // Duplicate users and empty emails are refused as before, whichever comes first.
        same_index(
            r#"{"users": [{"email": "a@x.com"}, {"email": "A@x.com"}, {"email": " "}], "groups": [{"name": "g", "members": ["a@x.com"]}]}"#,
            false,
        );
        same_index(
            r#"{"users": [{"email": "a@x.com"}, {"email": ""}, {"email": "a@x.com"}]}"#,
            false,
        );
        same_index(r#"{"groups": [{"name": "g"}, {"name": "g"}]}"#, true);
        same_index(r#"{}"#, false);
        // The sequence form of the structs, which the derived deserializer also reads.
        same_index(
            r#"[[{"email": "a@x.com"}], [["eng", null, ["a@x.com", "b@x.com"]], ["ops"]]]"#,
            false,
        );
        let unique = Indexed::resolved(
            parse_resolving(
                Path::new("s.json"),
                br#"{"groups": [{"name": "g"}, {"name": "g"}]}"#,
            )
            .unwrap(),
            GroupNames::Unique,
        );
        assert_eq!(
            unique.unwrap_err(),
            crate::model::SnapshotError::DuplicateGroup { name: "g".into() }
        );
    }

    #[test]
    fn a_snapshot_streamed_is_the_snapshot_serialized() {
        let json = r#"{"users":[{"email":"Ann@x.com","id":"1","attributes":{"title":"Eng","dept":"R&D"}},{"email":"bo@x.com","active":false}],
            "groups":[{"name":"eng","id":"g1","members":["ann@x.com","bo@x.com"]}],"skipped":[{"kind":"user","name":"svc","reason":"no email"}]}"#;
        let snap: Snapshot = serde_json::from_str(json).unwrap();
        // As the serializers write the whole text.
        let whole = [
            format!("{}\n", serde_json::to_string_pretty(&snap).unwrap()),
            yaml_serde::to_string(&snap).unwrap(),
        ];
        for (format, whole) in [Format::Json, Format::Yaml].into_iter().zip(whole) {
            let mut streamed = Vec::new();
            write_to(&snap, format, &mut streamed).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), whole);
        }
        // The attributes come out sorted by name, as a map's would.
        assert!(to_string(&snap, Format::Json).contains("\"dept\": \"R&D\",\n        \"title\""));
    }

    #[test]
    fn a_bad_file_reads_with_the_same_error_either_way() {
        let path = Path::new("snap.json");
        for bad in [
            r#"{"users": [], "extra": 1}"#,
            r#"{"users": [], "users": []}"#,
            r#"{"groups": [{"name": "g", "members": null}]}"#,
            r#"{"groups": [{"name": "g", "members": [1]}]}"#,
            r#"{"groups": [{"id": "g"}]}"#,
            r#"{"groups": [{"name": "g", "owner": "x"}]}"#,
            r#"{"groups": [{"name": "g", "name": "h"}]}"#,
            r#"{"groups": [{"name": "g", "members": [], "members": []}]}"#,
            r#"{"groups": [[]]}"#,
            r#"{"groups": {}}"#,
            r#"{"users": [{"email": "a@x.com", "colour": "red"}]}"#,
            r#"{"users": null}"#,
            r#"{"users": []} trailing"#,
            r#"{"users": [{"email": "a@x.com"}"#,
            r#"[]extra"#,
            r#""snapshot""#,
            "",
        ] {
            let whole = parse(path, bad.as_bytes()).err().map(|e| e.to_string());
            let streamed = parse_resolving(path, bad.as_bytes())
                .err()
                .map(|e| e.to_string());
            assert!(whole.is_some(), "{bad} should not parse");
            assert_eq!(whole, streamed, "{bad}");
        }
        // A byte-order mark is skipped, as by `parse`.
        let bom = b"\xef\xbb\xbf{\"users\": [{\"email\": \"a@x.com\"}]}";
        assert_eq!(
            parse_resolving(path, bom).unwrap().snapshot.users.len(),
            parse(path, bom).unwrap().users.len()
        );
    }
}
