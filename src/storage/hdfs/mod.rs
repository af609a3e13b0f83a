//! HDFS (`hdfs://nn:port/path`, `hdfs:///path` for `fs.defaultFS`): shards read from the
//! DataNodes, scratch in a private directory, output staged under
//! `<root>/_temporary/<run>/` and published by rename, as on the local file system.
//!
//! The client is `hdfs-native` (no JVM), configured like any Hadoop client (`HADOOP_CONF_DIR`
//! or `--conf-dir`, then `-D`: [`crate::settings`]); see [`client`] for the runtime, the per-NameNode client cache and the timeouts.
//! Block locations come from NameNode RPC through the `yarn` crate, with WebHDFS as fallback
//! (see [`locator`] for why). On a Kerberized cluster both speak Kerberos, from the ticket
//! cache or the keytab of [`client::use_keytab`].
//!
//! `viewfs://` locations (federated clusters) are served by the same stores: each call
//! resolves its path through the mount table ([`viewfs`]) to the NameNode and path behind
//! it, while messages and manifests keep the view's URLs. An output root must lie within
//! one mount link (publication renames, and renames cannot cross NameNodes).
//!
//! Every call is bounded in time: an unreachable NameNode fails the operation within
//! [`client::RPC_TIMEOUT`] (a refused connection at once) with a message naming its address.

pub mod client;
pub mod conf;
pub mod io;
pub mod locality;
pub mod locator;
pub mod viewfs;
pub mod webhdfs;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::Arc;

use hdfs_native::WriteOptions;
use parking_lot::Mutex;

use self::client::{HdfsFailure, NameNode};
use self::io::{FileSink, RangeReader, RANGE_CHUNK, READ_CHUNK};
use super::local::STAGING_DIR;
use super::location::Location;
use super::{
    published_before, Entry, HashingWriter, InputStore, OutputStore, Published, Scratch,
    ScratchFile, StagedObject, StagedWriter, StorageError, ATTEMPTS_DIR,
};

/// Permission of directories created for output and scratch (before the umask).
const DIR_PERMISSION: u32 = 0o755;
/// Permission of files created (before the umask).
const FILE_PERMISSION: u32 = 0o644;

/// Where an `hdfs://` or `viewfs://` location lives: the NameNode's authority (`None`:
/// `fs.defaultFS`) and the path there.
fn hdfs_parts(loc: &Location) -> Result<(Option<String>, String), StorageError> {
    match loc {
        Location::Hdfs { authority, path } => Ok((authority.clone(), path.clone())),
        Location::ViewFs { table, path } => {
            let target = client::mount_table(table.as_deref())
                .and_then(|t| Ok(t.resolve(path)?))
                .map_err(|f| backend(&loc.to_string(), f))?;
            Ok((Some(target.authority), target.path))
        }
        other => Err(StorageError::Unsupported {
            location: other.to_string(),
            what: "a non-HDFS location in the HDFS store".into(),
        }),
    }
}

/// The NameNode serving `loc`, with errors naming `loc`.
fn namenode_for(loc: &Location) -> Result<(Arc<NameNode>, String), StorageError> {
    let (authority, path) = hdfs_parts(loc)?;
    let nn = client::namenode(authority.as_deref()).map_err(|f| backend(&loc.to_string(), f))?;
    Ok((nn, normalize(&path)))
}

/// An absolute path without a trailing slash (`/` stays `/`).
fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// `dir/rel` for a relative, `/`-separated `rel`.
fn child(dir: &str, rel: &str) -> String {
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

fn backend(location: &str, f: HdfsFailure) -> StorageError {
    StorageError::Backend {
        location: location.to_string(),
        message: f.to_string(),
    }
}

/// `<location>: cannot <op>: <failure>`. `Backend` rather than `Io`: the failure is the
/// message, not a source that error chains would print a second time.
fn op_error(op: &'static str, location: &str, f: HdfsFailure) -> StorageError {
    StorageError::Backend {
        location: location.to_string(),
        message: format!("cannot {op}: {f}"),
    }
}

/// A [`FileSink`] error (whose message starts with the URL) as a `StorageError` naming `url`
/// once.
fn sink_error(url: &str, e: std::io::Error) -> StorageError {
    let text = e.to_string();
    let message = text
        .strip_prefix(url)
        .and_then(|t| t.strip_prefix(": "))
        .unwrap_or(&text)
        .to_string();
    StorageError::Backend {
        location: url.to_string(),
        message,
    }
}

/// The user named in WebHDFS requests (simple authentication), as Hadoop clients pick it.
fn webhdfs_user() -> String {
    ["HADOOP_USER_NAME", "HADOOP_PROXY_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "filex".to_string())
}

/// A file on one NameNode: (`hdfs://authority`, path).
type FileKey = (String, String);

/// Shards on HDFS.
#[derive(Default)]
pub struct HdfsInput {
    /// NameNodes whose block locations failed once: locality is skipped for them from then
    /// on (one warning, not one timeout per shard).
    no_locality: Mutex<HashSet<String>>,
    /// The files of each directory listed, so that the block locations of a directory's
    /// shards are asked for together (concurrent calls on one connection) rather than one
    /// round trip per shard.
    listed: Mutex<HashMap<FileKey, Vec<String>>>,
    /// Block locations fetched ahead (with another file of a directory listed without
    /// them), taken out when asked for.
    located: Mutex<HashMap<FileKey, Vec<locality::BlockHosts>>>,
}

impl HdfsInput {
    pub fn new() -> Self {
        Self::default()
    }

    /// The blocks of `file` with their hosts, fetched now (no batching).
    pub fn block_locations(
        &self,
        file: &Location,
    ) -> Result<Vec<locality::BlockHosts>, StorageError> {
        let (nn, path) = namenode_for(file)?;
        locator::of(&nn)
            .blocks(&nn, &path, &webhdfs_user())
            .map_err(|e| StorageError::Backend {
                location: file.to_string(),
                message: format!("no block locations: {e}"),
            })
    }

    /// The blocks of `path`: from the ones fetched ahead, else fetched together with up to
    /// [`LOCATION_BATCH`] − 1 not yet fetched files of the same listed directory.
    fn blocks_batched(
        &self,
        nn: &NameNode,
        path: &str,
    ) -> Result<Vec<locality::BlockHosts>, String> {
        let key = (nn.base_url.clone(), path.to_string());
        if let Some(blocks) = self.located.lock().remove(&key) {
            return Ok(blocks);
        }
        let mut batch = vec![path.to_string()];
        if let Some(dir) = parent(path) {
            let listed = self.listed.lock();
            let located = self.located.lock();
            if let Some(files) = listed.get(&(nn.base_url.clone(), dir.to_string())) {
                let start = files.iter().position(|f| f == path).map_or(0, |i| i + 1);
                batch.extend(
                    files[start..]
                        .iter()
                        .filter(|f| !located.contains_key(&(nn.base_url.clone(), (*f).clone())))
                        .take(LOCATION_BATCH - 1)
                        .cloned(),
                );
            }
        }
        let locator = locator::of(nn);
        let mut results = match locator.blocks_many(nn, &batch) {
            Ok(r) => r.into_iter(),
            Err(_) => return locator.blocks(nn, path, &webhdfs_user()),
        };
        let first = results.next().unwrap_or_else(|| Err("no answer".into()));
        let mut located = self.located.lock();
        for (p, r) in batch.iter().skip(1).zip(results) {
            if let Ok(blocks) = r {
                located.insert((nn.base_url.clone(), p.clone()), blocks);
            }
        }
        drop(located);
        match first {
            Ok(blocks) => Ok(blocks),
            // This one file failed over RPC: ask again, with the WebHDFS fallback.
            Err(_) => locator.blocks(nn, path, &webhdfs_user()),
        }
    }
}

/// The names of the mount links directly below a `viewfs://` directory (none for other
/// locations).
fn view_mount_points(dir: &Location) -> Result<std::collections::BTreeSet<String>, StorageError> {
    match dir {
        Location::ViewFs { table, path } => Ok(client::mount_table(table.as_deref())
            .map_err(|f| backend(&dir.to_string(), f))?
            .mount_points_in(path)),
        _ => Ok(Default::default()),
    }
}

/// What listing a path found.
enum Listed {
    Entries(Vec<Entry>),
    Missing,
    /// The path is a file (a listing answers the file itself).
    NotADirectory,
}

/// `path`'s entries from hdfs-native's `getListing`, without block locations.
fn list_plain(nn: &NameNode, dir: &Location, path: &str) -> Result<Listed, StorageError> {
    let statuses = match nn.call(nn.client.list_status(path, false)) {
        Ok(s) => s,
        Err(HdfsFailure::NotFound) => return Ok(Listed::Missing),
        Err(f) => return Err(op_error("list", &dir.to_string(), f)),
    };
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    let mut out = Vec::with_capacity(statuses.len());
    for s in statuses {
        let Some(name) = s.path.strip_prefix(&prefix).filter(|n| !n.is_empty()) else {
            return Ok(Listed::NotADirectory);
        };
        out.push(Entry {
            name: name.to_string(),
            is_dir: s.isdir,
            size: s.length as u64,
            modified_ms: i64::try_from(s.modification_time).ok(),
            hosts: None,
        });
    }
    Ok(Listed::Entries(out))
}

impl HdfsInput {
    /// `path`'s entries with every file's block hosts, in one exchange per page (Hadoop's
    /// `listLocatedStatus`) rather than a listing and then the files' locations.
    /// `Ok(None)` when that is not to
    /// be had (no RPC client, a failed call, locality off for this NameNode): the caller
    /// lists without locations, and its errors are the ones reported. `Err`: the client's
    /// configuration refuses this NameNode ([`locator::ListFailure::Refused`]).
    fn list_located(
        &self,
        nn: &NameNode,
        dir: &Location,
        path: &str,
    ) -> Result<Option<Listed>, StorageError> {
        if self.no_locality.lock().contains(&nn.base_url) {
            return Ok(None);
        }
        let entries = match locator::of(nn).list_located(nn, path) {
            Ok(Some(entries)) => entries,
            Ok(None) => return Ok(Some(Listed::Missing)),
            Err(locator::ListFailure::Refused(message)) => {
                return Err(StorageError::Backend {
                    location: dir.to_string(),
                    message: format!("cannot list: {message}"),
                })
            }
            Err(locator::ListFailure::Failed(e)) => {
                tracing::debug!(path, error = %e, "located listing failed; listing without locations");
                return Ok(None);
            }
        };
        let mut out = Vec::with_capacity(entries.len());
        for (e, blocks) in entries {
            if e.name.is_empty() {
                return Ok(Some(Listed::NotADirectory));
            }
            out.push(Entry {
                name: e.name,
                is_dir: e.is_dir,
                size: e.length,
                modified_ms: i64::try_from(e.modification_time).ok(),
                hosts: (!e.is_dir).then(|| locality::rank_hosts(&blocks)),
            });
        }
        Ok(Some(Listed::Entries(out)))
    }
}

/// Files whose block locations are asked for in one go.
const LOCATION_BATCH: usize = 256;

impl InputStore for HdfsInput {
    /// One `getListing` exchange per directory (the NameNode pages large ones).
    fn list(&self, dir: &Location) -> Result<Option<Vec<Entry>>, StorageError> {
        let mount_points = view_mount_points(dir)?;
        let (nn, path) = namenode_for(dir)?;
        let listed = match self.list_located(&nn, dir, &path)? {
            Some(listed) => listed,
            None => list_plain(&nn, dir, &path)?,
        };
        let mut out = match listed {
            Listed::Entries(entries) => entries,
            Listed::NotADirectory => return Ok(None),
            Listed::Missing if mount_points.is_empty() => return Ok(None),
            Listed::Missing => Vec::new(),
        };
        // A view's links below this directory are directories of the view, whatever the
        // NameNode behind the directory holds under their names.
        out.retain(|e| !mount_points.contains(&e.name));
        out.extend(mount_points.into_iter().map(|name| Entry {
            name,
            is_dir: true,
            size: 0,
            modified_ms: None,
            hosts: None,
        }));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        // Files listed without their hosts: kept so that [`Self::blocks_batched`] asks for
        // a directory's files together.
        let files: Vec<String> = out
            .iter()
            .filter(|e| !e.is_dir && e.hosts.is_none())
            .map(|e| child(&path, &e.name))
            .collect();
        if !files.is_empty() {
            self.listed
                .lock()
                .insert((nn.base_url.clone(), path), files);
        }
        Ok(Some(out))
    }

    fn open(&self, file: &Location) -> Result<Box<dyn Read + Send>, StorageError> {
        let (nn, path) = namenode_for(file)?;
        let url = nn.url(&path);
        let reader = nn
            .call(nn.client.read(&path))
            .map_err(|f| op_error("open", &url, f))?;
        Ok(Box::new(RangeReader::streaming(
            &reader,
            url,
            0,
            u64::MAX,
            READ_CHUNK,
        )))
    }

    /// Hosts ranked by the bytes of the file they hold. Locality is an optimisation: when
    /// neither RPC nor WebHDFS can answer, this warns once per NameNode and returns no hosts.
    fn block_hosts(&self, file: &Location) -> Result<Vec<String>, StorageError> {
        let (nn, path) = namenode_for(file)?;
        if self.no_locality.lock().contains(&nn.base_url) {
            return Ok(Vec::new());
        }
        match self.blocks_batched(&nn, &path) {
            Ok(blocks) => Ok(locality::rank_hosts(&blocks)),
            Err(e) => {
                tracing::warn!(
                    namenode = %nn.addr,
                    file = %file,
                    error = %e,
                    "no block locations; tasks reading this file system are placed without locality"
                );
                self.no_locality.lock().insert(nn.base_url.clone());
                Ok(Vec::new())
            }
        }
    }
}

/// Scratch space in one HDFS directory, removed at the end of the run. Several processes
/// (workers writing, a coordinator removing) may open the same directory.
pub struct HdfsScratch {
    location: Location,
}

impl HdfsScratch {
    /// Scratch in `dir` (created on first write).
    pub fn new(dir: Location) -> Result<Self, StorageError> {
        hdfs_parts(&dir)?;
        Ok(HdfsScratch { location: dir })
    }

    fn resolve(&self, name: &str) -> std::io::Result<(Arc<NameNode>, String, String)> {
        let (authority, dir) = hdfs_parts(&self.location)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let nn = client::namenode(authority.as_deref())
            .map_err(|f| f.into_io(&self.location.to_string()))?;
        let path = if name.is_empty() {
            normalize(&dir)
        } else {
            child(&normalize(&dir), name)
        };
        let url = nn.url(&path);
        Ok((nn, path, url))
    }
}

struct HdfsScratchFile {
    sink: FileSink,
}

impl Write for HdfsScratchFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sink.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }
}

impl ScratchFile for HdfsScratchFile {
    fn close(self: Box<Self>) -> std::io::Result<u64> {
        self.sink.close()
    }
}

/// Creates `path` (replacing a file there), parents included.
fn create_file(nn: &NameNode, path: &str) -> Result<hdfs_native::file::FileWriter, HdfsFailure> {
    let options = WriteOptions::default()
        .overwrite(true)
        .create_parent(true)
        .permission(FILE_PERMISSION);
    nn.call(nn.client.create(path, options))
}

impl Scratch for HdfsScratch {
    fn create(&self, name: &str) -> std::io::Result<Box<dyn ScratchFile>> {
        let (nn, path, url) = self.resolve(name)?;
        let writer = create_file(&nn, &path).map_err(|f| f.into_io(&url))?;
        Ok(Box::new(HdfsScratchFile {
            sink: FileSink::new(writer, url),
        }))
    }

    fn open_range(
        &self,
        name: &str,
        offset: u64,
        len: u64,
    ) -> std::io::Result<Box<dyn Read + Send>> {
        let (nn, path, url) = self.resolve(name)?;
        let reader = nn
            .call(nn.client.read(&path))
            .map_err(|f| f.into_io(&url))?;
        Ok(Box::new(RangeReader::windowed(
            reader,
            url,
            offset,
            len,
            RANGE_CHUNK,
        )))
    }

    /// One open (one block-locations call) for every range, read one after the other.
    fn read_ranges(&self, name: &str, ranges: &[(u64, u64)]) -> std::io::Result<Vec<bytes::Bytes>> {
        let (nn, path, url) = self.resolve(name)?;
        let reader = nn
            .call(nn.client.read(&path))
            .map_err(|f| f.into_io(&url))?;
        let file_len = reader.file_length() as u64;
        if let Some(&(offset, len)) = ranges.iter().find(|(o, l)| o.saturating_add(*l) > file_len) {
            let got = file_len.saturating_sub(offset) as usize;
            return Err(crate::storage::short_range(
                &self.describe(),
                name,
                offset,
                len,
                got,
            ));
        }
        let read = async {
            let mut out = Vec::with_capacity(ranges.len());
            for &(offset, len) in ranges {
                out.push(reader.read_range(offset as usize, len as usize).await?);
            }
            Ok::<_, hdfs_native::HdfsError>(out)
        };
        match client::block_on(client::DATA_TIMEOUT, read).map_err(|f| f.into_io(&url))? {
            Some(Ok(out)) => Ok(out),
            Some(Err(e)) => Err(HdfsFailure::from_data(e).into_io(&url)),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{url}: {} ranges not read in {} s",
                    ranges.len(),
                    client::DATA_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        let (nn, path, url) = self.resolve(name)?;
        match nn.call(nn.client.delete(&path, false)) {
            Ok(_) | Err(HdfsFailure::NotFound) => Ok(()),
            Err(f) => Err(f.into_io(&url)),
        }
    }

    fn size(&self, name: &str) -> std::io::Result<u64> {
        let (nn, path, url) = self.resolve(name)?;
        match nn.call(nn.client.get_file_info(&path)) {
            Ok(s) if !s.isdir => Ok(s.length as u64),
            Ok(_) => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{url} is a directory"),
            )),
            Err(f) => Err(f.into_io(&url)),
        }
    }

    fn remove_all(&self) -> std::io::Result<()> {
        let (nn, path, url) = self.resolve("")?;
        match nn.call(nn.client.delete(&path, true)) {
            Ok(_) | Err(HdfsFailure::NotFound) => Ok(()),
            Err(f) => Err(f.into_io(&url)),
        }
    }

    fn describe(&self) -> String {
        self.location.to_string()
    }
}

/// Output on HDFS: staged under `<root>/_temporary/<run_id>/<rel>`, published by rename.
pub struct HdfsOutput {
    root: Location,
    staging: Location,
    /// Directories of published files, each with whether this store made (or found) it
    /// already: a commit of thousands of partitions in a few hundred directories asks for
    /// each directory once, and publications into a directory being made wait for it.
    made_dirs: Mutex<HashMap<String, Arc<Mutex<bool>>>>,
}

impl HdfsOutput {
    pub fn new(root: Location, run_id: &str) -> Result<Self, StorageError> {
        hdfs_parts(&root)?;
        if let Location::ViewFs { table, path } = &root {
            let links = client::mount_table(table.as_deref())
                .map_err(|f| backend(&root.to_string(), f))?
                .links_below(path);
            if !links.is_empty() {
                return Err(StorageError::Backend {
                    location: root.to_string(),
                    message: format!(
                        "an output root must lie within one mount link, and this one has \
                         links below it ({}): name a directory inside one of them",
                        links.join(", ")
                    ),
                });
            }
        }
        let staging = root.join(STAGING_DIR).join(run_id);
        Ok(HdfsOutput {
            root,
            staging,
            made_dirs: Mutex::new(HashMap::new()),
        })
    }

    fn namenode(&self) -> Result<(Arc<NameNode>, String, String), StorageError> {
        let (nn, root) = namenode_for(&self.root)?;
        let (_, staging) = hdfs_parts(&self.staging)?;
        Ok((nn, root, normalize(&staging)))
    }
}

struct HdfsStaged {
    rel: String,
    path: String,
    url: String,
    out: HashingWriter<FileSink>,
}

impl Write for HdfsStaged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl StagedWriter for HdfsStaged {
    fn finish(self: Box<Self>) -> Result<StagedObject, StorageError> {
        let this = *self;
        let (sink, bytes, sha256) = this.out.into_parts();
        let closed = sink.close().map_err(|e| sink_error(&this.url, e))?;
        if closed != bytes {
            return Err(StorageError::Backend {
                location: this.url,
                message: format!("closed with {closed} bytes but {bytes} were written"),
            });
        }
        Ok(StagedObject {
            rel: this.rel,
            bytes,
            sha256,
            handle: this.path,
        })
    }
}

impl HdfsOutput {
    /// Stages `rel` at `below` (relative to the run's staging directory).
    fn stage_at(&self, rel: &str, below: &str) -> Result<Box<dyn StagedWriter>, StorageError> {
        let (nn, _, staging) = self.namenode()?;
        let path = child(&staging, below);
        let url = nn.url(&path);
        let writer = create_file(&nn, &path).map_err(|f| op_error("create", &url, f))?;
        Ok(Box::new(HdfsStaged {
            rel: rel.to_string(),
            path,
            url: url.clone(),
            out: HashingWriter::new(FileSink::new(writer, url)),
        }))
    }
}

impl OutputStore for HdfsOutput {
    /// Staged files are published by rename, to any name.
    fn renames_staged(&self) -> bool {
        true
    }

    fn stage(&self, rel: &str) -> Result<Box<dyn StagedWriter>, StorageError> {
        self.stage_at(rel, rel)
    }

    fn stage_attempt(
        &self,
        rel: &str,
        attempt: &str,
    ) -> Result<Box<dyn StagedWriter>, StorageError> {
        self.stage_at(rel, &format!("{ATTEMPTS_DIR}/{attempt}/{rel}"))
    }

    fn check_staged(&self, staged: &StagedObject) -> Result<(), String> {
        let (nn, _, _) = self.namenode().map_err(|e| e.to_string())?;
        match nn.call(nn.client.get_file_info(&staged.handle)) {
            Ok(s) if !s.isdir => crate::storage::same_size(staged, s.length as u64),
            Ok(_) => Err(format!("{} is a directory", nn.url(&staged.handle))),
            Err(f) => Err(f.into_io(&nn.url(&staged.handle)).to_string()),
        }
    }

    fn discard(&self, staged: &StagedObject) -> Result<(), StorageError> {
        let (nn, _, _) = self.namenode()?;
        match nn.call(nn.client.delete(&staged.handle, false)) {
            Ok(_) | Err(HdfsFailure::NotFound) => Ok(()),
            Err(f) => Err(op_error("remove", &nn.url(&staged.handle), f)),
        }
    }

    /// A rename (replacing what is there); a missing source with the staged size at the
    /// final name is a rename done before.
    fn publish(&self, obj: &StagedObject) -> Result<Published, StorageError> {
        let (nn, root, _) = self.namenode()?;
        let dest = child(&root, &obj.rel);
        let url = nn.url(&dest);
        if let Some(dir) = parent(&dest) {
            let made = Arc::clone(self.made_dirs.lock().entry(dir.to_string()).or_default());
            let mut made = made.lock();
            if !*made {
                nn.call(nn.client.mkdirs(dir, DIR_PERMISSION, true))
                    .map_err(|f| op_error("create", &nn.url(dir), f))?;
                *made = true;
            }
        }
        match nn.call(nn.client.rename(&obj.handle, &dest, true)) {
            Ok(_) => Ok(Published::Now),
            Err(HdfsFailure::NotFound) => published_before(&url, obj, self.size(&obj.rel)?),
            Err(f) => Err(op_error("publish", &url, f)),
        }
    }

    fn abort(&self) -> Result<(), StorageError> {
        let (nn, root, staging) = self.namenode()?;
        match nn.call(nn.client.delete(&staging, true)) {
            Ok(_) | Err(HdfsFailure::NotFound) => {}
            Err(f) => return Err(op_error("remove", &nn.url(&staging), f)),
        }
        // Leave `_temporary` itself if another run still uses it (a non-recursive delete of
        // a non-empty directory fails, which is the point).
        let _ = nn.call(nn.client.delete(&child(&root, STAGING_DIR), false));
        Ok(())
    }

    fn staged_left(&self) -> Result<bool, StorageError> {
        let (nn, _, staging) = self.namenode()?;
        match nn.call(nn.client.get_file_info(&staging)) {
            Ok(_) => Ok(true),
            Err(HdfsFailure::NotFound) => Ok(false),
            Err(f) => Err(op_error("look up", &nn.url(&staging), f)),
        }
    }

    fn put_atomic(&self, rel: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let mut w = self.stage(rel)?;
        w.write_all(bytes)
            .map_err(|e| sink_error(&self.url(rel), e))?;
        let obj = w.finish()?;
        self.commit(&[obj])
    }

    fn remove(&self, rel: &str) -> Result<(), StorageError> {
        let (nn, root, _) = self.namenode()?;
        let path = child(&root, rel);
        match nn.call(nn.client.delete(&path, false)) {
            Ok(_) | Err(HdfsFailure::NotFound) => Ok(()),
            Err(f) => Err(op_error("remove", &nn.url(&path), f)),
        }
    }

    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let (nn, root, _) = self.namenode()?;
        let path = child(&root, rel);
        let url = nn.url(&path);
        let reader = match nn.call(nn.client.read(&path)) {
            Ok(r) => r,
            Err(HdfsFailure::NotFound) => return Ok(None),
            Err(f) => return Err(op_error("open", &url, f)),
        };
        let mut bytes = Vec::new();
        RangeReader::streaming(&reader, url.clone(), 0, u64::MAX, READ_CHUNK)
            .read_to_end(&mut bytes)
            .map_err(|e| StorageError::io("read", &url, e))?;
        Ok(Some(bytes))
    }

    fn size(&self, rel: &str) -> Result<Option<u64>, StorageError> {
        let (nn, root, _) = self.namenode()?;
        let path = child(&root, rel);
        match nn.call(nn.client.get_file_info(&path)) {
            Ok(s) if !s.isdir => Ok(Some(s.length as u64)),
            Ok(_) | Err(HdfsFailure::NotFound) => Ok(None),
            Err(f) => Err(op_error("stat", &nn.url(&path), f)),
        }
    }

    /// `hdfs://<authority>/<root>/<rel>`, with the authority of `fs.defaultFS` filled in for
    /// `hdfs:///` roots when the configuration names one.
    fn url(&self, rel: &str) -> String {
        let loc = self.root.join(rel);
        match &loc {
            Location::Hdfs { authority, path } => match client::base_url(authority.as_deref()) {
                Some(base) => format!("{base}{path}"),
                None => loc.to_string(),
            },
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize("/a/b/"), "/a/b");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("a"), "/a");
        assert_eq!(child("/a/", "/b/c"), "/a/b/c");
        assert_eq!(child("/", "x"), "/x");
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("a"), None);
    }

    #[test]
    fn stores_refuse_other_schemes() {
        let local = Location::Local("/tmp/x".into());
        assert!(HdfsOutput::new(local.clone(), "r").is_err());
        assert!(HdfsScratch::new(local.clone()).is_err());
        assert!(HdfsInput::new().list(&local).is_err());
    }

    #[test]
    fn staging_is_below_the_root() {
        let root = Location::Hdfs {
            authority: Some("nn:8020".into()),
            path: "/out".into(),
        };
        let out = HdfsOutput::new(root, "run-1").unwrap();
        assert_eq!(
            out.staging.to_string(),
            "hdfs://nn:8020/out/_temporary/run-1"
        );
    }
}
