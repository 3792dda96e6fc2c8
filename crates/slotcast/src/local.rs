//! The tool's data directory: the session (`session.json`), this device's key
//! (`device.key`, an age X25519 identity) and the connection profiles
//! (`profiles/<reservation>.age`, encrypted for that key). Every file is written mode 0600
//! through a temporary name, so a crash leaves the old file or the new one, never half.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use serde_json::Value;

use crate::{Error, Result};

/// The data directory.
#[derive(Debug, Clone)]
pub struct DataDir(PathBuf);

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The server's base address.
    pub server: String,
    /// The bearer token.
    pub token: String,
}

fn local(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Local {
        path: path.to_owned(),
        source,
    }
}

impl DataDir {
    /// `dir`, else `$XDG_DATA_HOME/slotcast`, else `~/.local/share/slotcast`.
    pub fn new(dir: Option<PathBuf>) -> Result<DataDir> {
        let dir = dir
            .or_else(|| {
                std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("slotcast"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/slotcast"))
            })
            .ok_or_else(|| Error::Input("no data directory: set --data-dir or HOME".into()))?;
        Ok(DataDir(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `bytes` to `name` (a path inside the directory), mode 0600.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.0.join(name);
        let dir = path.parent().unwrap_or(&self.0).to_owned();
        std::fs::create_dir_all(&dir).map_err(local(&dir))?;
        std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700))
            .map_err(local(&self.0))?;
        let tmp = path.with_extension("part");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(local(&tmp))?;
        f.write_all(bytes).map_err(local(&tmp))?;
        f.sync_all().map_err(local(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(local(&path))?;
        Ok(path)
    }

    fn read(&self, name: &str) -> Result<Option<String>> {
        let path = self.0.join(name);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(local(&path)(e)),
        }
    }

    /// The stored session.
    pub fn session(&self) -> Result<Session> {
        let text = self.read("session.json")?.ok_or(Error::NotSignedIn)?;
        let v: Value = serde_json::from_str(&text).map_err(|_| Error::NotSignedIn)?;
        match (v["server"].as_str(), v["token"].as_str()) {
            (Some(server), Some(token)) => Ok(Session {
                server: server.to_owned(),
                token: token.to_owned(),
            }),
            _ => Err(Error::NotSignedIn),
        }
    }

    /// Keeps the session.
    pub fn save_session(&self, s: &Session) -> Result<()> {
        let v = serde_json::json!({ "server": s.server, "token": s.token });
        self.write("session.json", v.to_string().as_bytes())?;
        Ok(())
    }

    /// Forgets the session.
    pub fn forget_session(&self) -> Result<()> {
        let path = self.0.join("session.json");
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(local(&path)(e)),
        }
    }

    /// This device's key, made on first use.
    pub fn device_key(&self) -> Result<age::x25519::Identity> {
        if let Some(text) = self.read("device.key")? {
            return text.trim().parse().map_err(|e: &str| Error::Local {
                path: self.0.join("device.key"),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            });
        }
        let id = age::x25519::Identity::generate();
        self.write("device.key", id.to_string().expose_secret().as_bytes())?;
        Ok(id)
    }

    /// Where the profile of `reservation` is kept.
    pub fn profile_path(&self, reservation: i64) -> PathBuf {
        self.0.join("profiles").join(format!("{reservation}.age"))
    }

    /// Keeps the (armored, encrypted) profile of `reservation`.
    pub fn save_profile(&self, reservation: i64, armored: &str) -> Result<PathBuf> {
        self.write(&format!("profiles/{reservation}.age"), armored.as_bytes())
    }
}
