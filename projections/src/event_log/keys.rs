//! Keys for crypto-shredding: one data key per person, wrapped by a master key.
//!
//! Every person (user) has a random 256-bit *data key*; the personal data inside their events is
//! encrypted with it (see [`super::sealing`]). Data keys live in the `data_keys` table, each
//! *wrapped* (encrypted) by the *master key*, which never enters the database: it sits in a key
//! file (`CVM_MASTER_KEY_FILE`, by default `<data dir>/master.key`) that is created at the first
//! start. Erasing a person destroys their data key (the row keeps only a tombstone), after which
//! their personal data in the log is unreadable noise, while the events' types, times and ids
//! stay readable.
//!
//! Rotating the master key re-wraps every data key; the events themselves are not touched.
//! The new key is written to `<key file>.next` before the re-wrapped rows are committed and
//! renamed over the key file after, and a [`Keyring`] that meets a key id it does not know
//! reads both files again, so a server running during a rotation keeps reading.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use crate::time_format::to_sql;

/// Bytes of an XChaCha20-Poly1305 nonce, stored in front of every ciphertext.
pub(crate) const NONCE_BYTES: usize = 24;

/// Why a key could not be loaded, made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The key file does not hold a key.
    #[error("master key file {0} does not hold a key (expected 32 bytes in base64)")]
    Malformed(PathBuf),
    /// The database holds data keys but there is no key file to unwrap them.
    #[error(
        "master key file {0} is missing, but the database holds encrypted personal data: restore \
         the key file (or point CVM_MASTER_KEY_FILE at it); without it that data cannot be read"
    )]
    Missing(PathBuf),
    /// Data keys are wrapped by a master key that is not in the key file(s).
    #[error(
        "the database's data keys are wrapped by master key {0}, which is not in the key file: \
         is CVM_MASTER_KEY_FILE pointing at the right file?"
    )]
    UnknownMasterKey(String),
    /// A wrapped key or a ciphertext failed authentication: tampered with, or the wrong key.
    #[error("a key or ciphertext failed authentication (tampered with, or the wrong key)")]
    Authentication,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A 256-bit key that wraps data keys. Never stored in the database; its id (a hash prefix)
/// is, beside every key it wrapped.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("key", &"***")
            .finish()
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self::from_key(Key::generate())
    }

    fn from_key(key: Key) -> Self {
        let digest = Sha256::digest(key.as_slice());
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self { id, key }
    }

    /// The key's public id: the first 8 bytes of its SHA-256, in hex.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Reads the key from the text of a key file (base64; `#` lines are comments).
    fn parse(text: &str) -> Option<Self> {
        let encoded: String = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        let bytes = BASE64.decode(encoded).ok()?;
        let key = Key::try_from(bytes.as_slice()).ok()?;
        Some(Self::from_key(key))
    }

    /// The text of a key file holding this key.
    fn file_text(&self) -> String {
        format!(
            "# CV Manager master key {}: keep it secret, keep a backup apart from the database.\n\
             # Without it the personal data in the database cannot be read.\n{}\n",
            self.id,
            BASE64.encode(self.key.as_slice())
        )
    }

    /// `data_key` encrypted for `subject`: nonce followed by ciphertext and tag.
    pub(crate) fn wrap(&self, subject: &str, data_key: &Key) -> Vec<u8> {
        seal_bytes(&self.key, &wrap_context(subject), data_key.as_slice())
    }

    fn unwrap(&self, subject: &str, wrapped: &[u8]) -> Result<Key, KeyError> {
        let bytes = open_bytes(&self.key, &wrap_context(subject), wrapped)?;
        Key::try_from(bytes.as_slice()).map_err(|_| KeyError::Authentication)
    }
}

/// What a wrapped data key is bound to: a wrapped key copied to another subject's row fails.
fn wrap_context(subject: &str) -> Vec<u8> {
    format!("cvm data key v1|{subject}").into_bytes()
}

/// Encrypts `plaintext` under `key` with a fresh random nonce, binding `context` (AEAD
/// associated data); returns nonce ‖ ciphertext ‖ tag.
pub(crate) fn seal_bytes(key: &Key, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce = XNonce::generate();
    let ciphertext = XChaCha20Poly1305::new(key)
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: context,
            },
        )
        // Encryption fails only for messages beyond 256 GiB.
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
    out.extend_from_slice(nonce.as_slice());
    out.extend_from_slice(&ciphertext);
    out
}

/// The inverse of [`seal_bytes`].
pub(crate) fn open_bytes(key: &Key, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
    if sealed.len() < NONCE_BYTES {
        return Err(KeyError::Authentication);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    let nonce = XNonce::try_from(nonce).map_err(|_| KeyError::Authentication)?;
    XChaCha20Poly1305::new(key)
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad: context,
            },
        )
        .map_err(|_| KeyError::Authentication)
}

/// A person's data key as the log finds it.
#[derive(Clone)]
pub(crate) enum DataKey {
    /// Usable.
    Active(Key),
    /// Destroyed by an erasure: what it encrypted can no longer be read.
    Erased,
}

/// The master keys a process knows: the current one first, and during a rotation the next.
pub struct Keyring {
    /// The key file, or `None` for a keyring that lives in memory only (tests).
    file: Option<PathBuf>,
    keys: RwLock<Vec<MasterKey>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("file", &self.file).finish()
    }
}

/// What a master-key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Id of the key that wrapped the data keys before.
    pub from: String,
    /// Id of the key that wraps them now.
    pub to: String,
    /// Data keys re-wrapped.
    pub rewrapped: u64,
}

/// `<file>.next`: where a rotation puts the new key until its rows are committed.
fn next_file(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

fn file_error(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::File {
        path: path.to_owned(),
        source,
    }
}

/// Reads a key file; `Ok(None)` if there is none.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, KeyError> {
    match fs::read_to_string(path) {
        Ok(text) => MasterKey::parse(&text)
            .map(Some)
            .ok_or_else(|| KeyError::Malformed(path.to_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(file_error(path)(error)),
    }
}

/// Writes a key file readable by its owner only, durably. `create_new` refuses to overwrite.
fn write_key_file(path: &Path, key: &MasterKey, create_new: bool) -> Result<(), KeyError> {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(file_error(path))?;
    file.write_all(key.file_text().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(file_error(path))?;
    sync_parent(path)
}

/// Makes a rename or a new file in `path`'s directory durable.
fn sync_parent(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(file_error(parent))?;
    }
    Ok(())
}

impl Keyring {
    /// A keyring that holds `key` in memory only (for tests and scratch databases).
    pub fn in_memory(key: MasterKey) -> Self {
        Self {
            file: None,
            keys: RwLock::new(vec![key]),
        }
    }

    /// A keyring with a new random key, in memory only (for tests).
    pub fn ephemeral() -> Self {
        Self::in_memory(MasterKey::generate())
    }

    /// Loads the key file `file` (and `<file>.next`, left by a rotation in progress), creating
    /// the key file with a new random key when neither it nor any data key exists yet. Refuses a
    /// missing or mismatched key file when the database holds data keys.
    pub async fn open(file: &Path, pool: &SqlitePool) -> Result<Self, KeyError> {
        let in_use: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT master_key_id FROM data_keys WHERE master_key_id IS NOT NULL",
        )
        .fetch_all(pool)
        .await?;
        let mut keys = Self::read_files(file)?;
        if keys.is_empty() {
            if !in_use.is_empty() {
                return Err(KeyError::Missing(file.to_owned()));
            }
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(file_error(parent))?;
            }
            let key = MasterKey::generate();
            match write_key_file(file, &key, true) {
                Ok(()) => tracing::info!(
                    file = %file.display(),
                    key = key.id(),
                    "created a new master key: back it up apart from the database"
                ),
                // Another process created it first: use theirs.
                Err(KeyError::File { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(error),
            }
            keys = Self::read_files(file)?;
        }
        if let Some(unknown) = in_use
            .iter()
            .find(|id| !keys.iter().any(|key| key.id() == id.as_str()))
        {
            return Err(KeyError::UnknownMasterKey(unknown.clone()));
        }
        Ok(Self {
            file: Some(file.to_owned()),
            keys: RwLock::new(keys),
        })
    }

    /// The keys in the key file and its `.next` companion: the current key first.
    fn read_files(file: &Path) -> Result<Vec<MasterKey>, KeyError> {
        // `.next` first: a rotation renames it over the key file, so reading in this order
        // never misses the new key in the middle of that rename.
        let next = read_key_file(&next_file(file))?;
        let current = read_key_file(file)?;
        let mut keys: Vec<MasterKey> = current.into_iter().chain(next).collect();
        keys.dedup_by(|a, b| a.id == b.id);
        Ok(keys)
    }

    pub(crate) fn current(&self) -> MasterKey {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys[0].clone()
    }

    /// The master key with this id, reading the key files again if it is not known yet (a
    /// rotation by another process).
    fn find(&self, id: &str) -> Result<MasterKey, KeyError> {
        let known = |keys: &[MasterKey]| keys.iter().find(|key| key.id() == id).cloned();
        {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(key) = known(&keys) {
                return Ok(key);
            }
        }
        let Some(file) = &self.file else {
            return Err(KeyError::UnknownMasterKey(id.to_owned()));
        };
        let reloaded = Self::read_files(file)?;
        let found = known(&reloaded);
        if !reloaded.is_empty() {
            *self
                .keys
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = reloaded;
        }
        found.ok_or_else(|| KeyError::UnknownMasterKey(id.to_owned()))
    }

    /// Unwraps a stored data key.
    fn unwrap(&self, subject: &str, wrapped: &[u8], master_id: &str) -> Result<Key, KeyError> {
        self.find(master_id)?.unwrap(subject, wrapped)
    }

    /// The data keys of `subjects` (those that have one), read on `conn` so that they come from
    /// the same snapshot as the events read beside them.
    pub(crate) async fn data_keys(
        &self,
        conn: &mut SqliteConnection,
        subjects: &[String],
    ) -> Result<HashMap<String, DataKey>, KeyError> {
        let mut found = HashMap::with_capacity(subjects.len());
        if subjects.is_empty() {
            return Ok(found);
        }
        let list = serde_json::to_string(subjects).unwrap_or_else(|_| "[]".to_owned());
        // One JSON row rather than a row per key: a catch-up batch needs thousands of keys,
        // and sqlx hands each result row across threads with a wake-up of its own.
        let rows: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(json_array(subject_id, iif(wrapped_key IS NULL, NULL, hex(wrapped_key)),
                                                master_key_id))
               FROM data_keys
              WHERE subject_id IN (SELECT value FROM json_each(?))",
        )
        .bind(list)
        .fetch_one(&mut *conn)
        .await?;
        let rows: Vec<(String, Option<String>, Option<String>)> =
            serde_json::from_str(rows.as_deref().unwrap_or("[]"))
                .map_err(|error| KeyError::Database(sqlx::Error::Decode(Box::new(error))))?;
        for (subject, wrapped, master_id) in rows {
            let key = match (wrapped, master_id) {
                (Some(wrapped), Some(master_id)) => {
                    let wrapped = from_hex(&wrapped).ok_or(KeyError::Authentication)?;
                    DataKey::Active(self.unwrap(&subject, &wrapped, &master_id)?)
                }
                _ => DataKey::Erased,
            };
            found.insert(subject, key);
        }
        Ok(found)
    }

    /// The data key of `subject`, made (and stored, wrapped) if it has none yet. `None` when
    /// the subject was erased: nothing may be written about them any more.
    pub(crate) async fn data_key_for_writing(
        &self,
        pool: &SqlitePool,
        subject: &str,
    ) -> Result<Option<Key>, KeyError> {
        for _ in 0..2 {
            let mut conn = pool.acquire().await?;
            let subjects = [subject.to_owned()];
            match self.data_keys(&mut conn, &subjects).await?.remove(subject) {
                Some(DataKey::Active(key)) => return Ok(Some(key)),
                Some(DataKey::Erased) => return Ok(None),
                None => {
                    let key = Key::generate();
                    let master = self.current();
                    // OR IGNORE: if another writer made this subject's key first, the loop
                    // reads theirs.
                    sqlx::query(
                        "INSERT OR IGNORE INTO data_keys (subject_id, wrapped_key, master_key_id, created_at)
                         VALUES (?, ?, ?, ?)",
                    )
                    .bind(subject)
                    .bind(master.wrap(subject, &key))
                    .bind(master.id())
                    .bind(to_sql(OffsetDateTime::now_utc()))
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        Err(KeyError::Authentication)
    }

    /// Whether `subject`'s data key was destroyed.
    pub async fn is_erased(&self, pool: &SqlitePool, subject: &str) -> Result<bool, KeyError> {
        let erased: Option<Option<String>> =
            sqlx::query_scalar("SELECT erased_at FROM data_keys WHERE subject_id = ?")
                .bind(subject)
                .fetch_optional(pool)
                .await?;
        Ok(matches!(erased, Some(Some(_))))
    }

    /// Makes a new master key and re-wraps every data key with it (one transaction), then makes
    /// it the key file's key. Readers in other processes keep working throughout: the new key
    /// is on disk (as `<file>.next`) before any row refers to it.
    pub async fn rotate(&self, pool: &SqlitePool) -> Result<Rotation, KeyError> {
        let Some(file) = self.file.clone() else {
            return Err(KeyError::Missing(PathBuf::from("(in memory)")));
        };
        let next_path = next_file(&file);
        let old = self.current();
        let new = MasterKey::generate();
        write_key_file(&next_path, &new, false)?;
        *self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = vec![old.clone(), new.clone()];

        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows: Vec<(String, Vec<u8>, String)> = sqlx::query_as(
            "SELECT subject_id, wrapped_key, master_key_id FROM data_keys
              WHERE wrapped_key IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?;
        let rewrapped = rows.len() as u64;
        for (subject, wrapped, master_id) in rows {
            let key = self.unwrap(&subject, &wrapped, &master_id)?;
            sqlx::query(
                "UPDATE data_keys SET wrapped_key = ?, master_key_id = ? WHERE subject_id = ?",
            )
            .bind(new.wrap(&subject, &key))
            .bind(new.id())
            .bind(&subject)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;

        fs::rename(&next_path, &file).map_err(file_error(&file))?;
        sync_parent(&file)?;
        *self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = vec![new.clone()];
        Ok(Rotation {
            from: old.id().to_owned(),
            to: new.id().to_owned(),
            rewrapped,
        })
    }
}

/// Finishes a rotation that stopped between committing the re-wrapped rows and renaming the new
/// key file into place (the rows use the `.next` key), or drops a `.next` file whose rotation
/// never committed. Only the rotating command calls this: a server must not remove a `.next`
/// file that a rotation running right now is about to commit.
pub async fn finish_interrupted_rotation(file: &Path, pool: &SqlitePool) -> Result<(), KeyError> {
    let next_path = next_file(file);
    let Some(next) = read_key_file(&next_path)? else {
        return Ok(());
    };
    let uses_next: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM data_keys WHERE master_key_id = ?)")
            .bind(next.id())
            .fetch_one(pool)
            .await?;
    if uses_next {
        fs::rename(&next_path, file).map_err(file_error(file))?;
        sync_parent(file)?;
        tracing::info!(
            key = next.id(),
            "finished an interrupted master-key rotation"
        );
    } else {
        fs::remove_file(&next_path).map_err(file_error(&next_path))?;
        tracing::info!("removed the new key of a master-key rotation that never committed");
    }
    Ok(())
}

/// The bytes spelled by SQLite's `hex()`; `None` if it is not hex.
fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_round_trips_and_names_its_key() {
        let key = MasterKey::generate();
        let parsed = MasterKey::parse(&key.file_text()).expect("parses");
        assert_eq!(parsed.id(), key.id());
        assert_eq!(parsed.key, key.key);
        assert_eq!(key.id().len(), 16);
    }

    #[test]
    fn a_key_file_without_a_key_is_refused() {
        assert!(MasterKey::parse("# only a comment\n").is_none());
        assert!(MasterKey::parse("c2hvcnQ=").is_none(), "too short");
    }

    #[test]
    fn a_wrapped_key_opens_only_for_its_subject_and_master_key() {
        let master = MasterKey::generate();
        let data_key = Key::generate();
        let wrapped = master.wrap("alice", &data_key);
        assert_eq!(master.unwrap("alice", &wrapped).unwrap(), data_key);
        assert!(
            master.unwrap("bob", &wrapped).is_err(),
            "bound to its subject"
        );
        assert!(MasterKey::generate().unwrap("alice", &wrapped).is_err());
        let mut tampered = wrapped.clone();
        tampered[30] ^= 1;
        assert!(master.unwrap("alice", &tampered).is_err());
    }

    #[test]
    fn sealing_uses_a_fresh_nonce_each_time() {
        let key = Key::generate();
        let one = seal_bytes(&key, b"ctx", b"same text");
        let two = seal_bytes(&key, b"ctx", b"same text");
        assert_ne!(one, two);
        assert_eq!(open_bytes(&key, b"ctx", &one).unwrap(), b"same text");
        assert!(open_bytes(&key, b"other", &one).is_err());
        assert!(open_bytes(&key, b"ctx", &one[..10]).is_err());
    }
}
