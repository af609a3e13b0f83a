//! The few GSS-API (RFC 2744) calls the GSSAPI mechanism needs, from MIT's
//! `libgssapi_krb5.so.2` loaded at run time: building needs no Kerberos
//! headers, and clients of unsecured clusters need no Kerberos library.
//! Declarations follow RFC 2744's C bindings (MIT's layout on LP64).

use std::ffi::c_void;
use std::os::raw::{c_char, c_int};
use std::sync::OnceLock;

pub(crate) type OmUint32 = u32;
pub(crate) type Name = *mut c_void;
pub(crate) type Ctx = *mut c_void;
pub(crate) type Cred = *mut c_void;

/// `gss_buffer_desc`.
#[repr(C)]
pub(crate) struct Buffer {
    pub(crate) length: usize,
    pub(crate) value: *mut c_void,
}

impl Buffer {
    pub(crate) fn empty() -> Buffer {
        Buffer {
            length: 0,
            value: std::ptr::null_mut(),
        }
    }

    /// A buffer pointing at `data` (GSS-API only reads input buffers).
    pub(crate) fn borrow(data: &[u8]) -> Buffer {
        Buffer {
            length: data.len(),
            value: data.as_ptr() as *mut c_void,
        }
    }
}

/// `gss_OID_desc`.
#[repr(C)]
pub(crate) struct Oid {
    pub(crate) length: OmUint32,
    pub(crate) elements: *mut c_void,
}

/// `gss_OID_set_desc`.
#[repr(C)]
pub(crate) struct OidSet {
    pub(crate) count: usize,
    pub(crate) elements: *mut Oid,
}

/// `gss_key_value_element_desc` (MIT credential store extension).
#[repr(C)]
pub(crate) struct KeyValue {
    pub(crate) key: *const c_char,
    pub(crate) value: *const c_char,
}

/// `gss_key_value_set_desc`.
#[repr(C)]
pub(crate) struct KeyValueSet {
    pub(crate) count: OmUint32,
    pub(crate) elements: *const KeyValue,
}

pub(crate) const S_COMPLETE: OmUint32 = 0;
pub(crate) const S_CONTINUE_NEEDED: OmUint32 = 1;
pub(crate) const C_GSS_CODE: c_int = 1;
pub(crate) const C_MECH_CODE: c_int = 2;
pub(crate) const C_INITIATE: c_int = 1;
pub(crate) const C_INDEFINITE: OmUint32 = 0xffff_ffff;
pub(crate) const C_QOP_DEFAULT: OmUint32 = 0;
pub(crate) const C_MUTUAL_FLAG: OmUint32 = 2;
pub(crate) const C_REPLAY_FLAG: OmUint32 = 4;
pub(crate) const C_SEQUENCE_FLAG: OmUint32 = 8;
pub(crate) const C_CONF_FLAG: OmUint32 = 16;
pub(crate) const C_INTEG_FLAG: OmUint32 = 32;

/// True when `major` carries a routine or calling error.
pub(crate) fn is_error(major: OmUint32) -> bool {
    major & 0xffff_0000 != 0
}

/// DER bodies of the OIDs used (RFC 1964 / RFC 2743).
pub(crate) const OID_MECH_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
pub(crate) const OID_NT_KRB5_PRINCIPAL: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01];

/// An `Oid` over one of the constants above (GSS-API never writes through it).
pub(crate) fn oid(der: &'static [u8]) -> Oid {
    Oid {
        length: der.len() as OmUint32,
        elements: der.as_ptr() as *mut c_void,
    }
}

type ImportName =
    unsafe extern "C" fn(*mut OmUint32, *const Buffer, *const Oid, *mut Name) -> OmUint32;
type AcquireCred = unsafe extern "C" fn(
    *mut OmUint32,
    Name,
    OmUint32,
    *const OidSet,
    c_int,
    *mut Cred,
    *mut *mut OidSet,
    *mut OmUint32,
) -> OmUint32;
type AcquireCredFrom = unsafe extern "C" fn(
    *mut OmUint32,
    Name,
    OmUint32,
    *const OidSet,
    c_int,
    *const KeyValueSet,
    *mut Cred,
    *mut *mut OidSet,
    *mut OmUint32,
) -> OmUint32;
type InitSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    Cred,
    *mut Ctx,
    Name,
    *const Oid,
    OmUint32,
    OmUint32,
    *const c_void,
    *const Buffer,
    *mut *mut Oid,
    *mut Buffer,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
type Wrap = unsafe extern "C" fn(
    *mut OmUint32,
    Ctx,
    c_int,
    OmUint32,
    *const Buffer,
    *mut c_int,
    *mut Buffer,
) -> OmUint32;
type Unwrap = unsafe extern "C" fn(
    *mut OmUint32,
    Ctx,
    *const Buffer,
    *mut Buffer,
    *mut c_int,
    *mut OmUint32,
) -> OmUint32;
type WrapSizeLimit =
    unsafe extern "C" fn(*mut OmUint32, Ctx, c_int, OmUint32, OmUint32, *mut OmUint32) -> OmUint32;
type DisplayStatus = unsafe extern "C" fn(
    *mut OmUint32,
    OmUint32,
    c_int,
    *const Oid,
    *mut OmUint32,
    *mut Buffer,
) -> OmUint32;
type ReleaseBuffer = unsafe extern "C" fn(*mut OmUint32, *mut Buffer) -> OmUint32;
type ReleaseName = unsafe extern "C" fn(*mut OmUint32, *mut Name) -> OmUint32;
type ReleaseCred = unsafe extern "C" fn(*mut OmUint32, *mut Cred) -> OmUint32;
type DeleteSecContext = unsafe extern "C" fn(*mut OmUint32, *mut Ctx, *mut Buffer) -> OmUint32;

/// The loaded library and its entry points.
pub(crate) struct Gss {
    _lib: libloading::Library,
    pub(crate) import_name: ImportName,
    pub(crate) acquire_cred: AcquireCred,
    pub(crate) acquire_cred_from: AcquireCredFrom,
    pub(crate) init_sec_context: InitSecContext,
    pub(crate) wrap: Wrap,
    pub(crate) unwrap: Unwrap,
    pub(crate) wrap_size_limit: WrapSizeLimit,
    pub(crate) display_status: DisplayStatus,
    pub(crate) release_buffer: ReleaseBuffer,
    pub(crate) release_name: ReleaseName,
    pub(crate) release_cred: ReleaseCred,
    pub(crate) delete_sec_context: DeleteSecContext,
}

/// The shared object loaded, by its soname (Debian: `libgssapi-krb5-2`).
pub(crate) const LIBRARY: &str = "libgssapi_krb5.so.2";

/// The library, loaded once per process; `Err` says why it cannot be used.
pub(crate) fn gss() -> Result<&'static Gss, String> {
    static GSS: OnceLock<Result<Gss, String>> = OnceLock::new();
    GSS.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Gss, String> {
    // SAFETY: loading MIT's GSS-API library runs only its (side-effect free) initialisers.
    let lib = unsafe { libloading::Library::new(LIBRARY) }.map_err(|e| {
        format!("cannot load {LIBRARY} ({e}); install MIT Kerberos (Debian/Ubuntu: apt-get install libgssapi-krb5-2)")
    })?;
    macro_rules! sym {
        ($name:literal) => {{
            // SAFETY: the symbol's type is the RFC 2744 / MIT signature declared above.
            let s = unsafe { lib.get($name) }.map_err(|e| {
                format!(
                    "{LIBRARY} lacks {}: {e}",
                    String::from_utf8_lossy(&$name[..$name.len() - 1])
                )
            })?;
            *s
        }};
    }
    Ok(Gss {
        import_name: sym!(b"gss_import_name\0"),
        acquire_cred: sym!(b"gss_acquire_cred\0"),
        acquire_cred_from: sym!(b"gss_acquire_cred_from\0"),
        init_sec_context: sym!(b"gss_init_sec_context\0"),
        wrap: sym!(b"gss_wrap\0"),
        unwrap: sym!(b"gss_unwrap\0"),
        wrap_size_limit: sym!(b"gss_wrap_size_limit\0"),
        display_status: sym!(b"gss_display_status\0"),
        release_buffer: sym!(b"gss_release_buffer\0"),
        release_name: sym!(b"gss_release_name\0"),
        release_cred: sym!(b"gss_release_cred\0"),
        delete_sec_context: sym!(b"gss_delete_sec_context\0"),
        _lib: lib,
    })
}

impl Gss {
    /// The library's text for a (major, minor) status pair.
    pub(crate) fn status_text(&self, major: OmUint32, minor: OmUint32) -> String {
        let mut parts = Vec::new();
        let mech = oid(OID_MECH_KRB5);
        for (code, kind) in [(major, C_GSS_CODE), (minor, C_MECH_CODE)] {
            if code == 0 {
                continue;
            }
            let mut context: OmUint32 = 0;
            loop {
                let mut m: OmUint32 = 0;
                let mut buf = Buffer::empty();
                // SAFETY: all pointers are valid for the call; buf is released below.
                let r = unsafe {
                    (self.display_status)(&mut m, code, kind, &mech, &mut context, &mut buf)
                };
                if is_error(r) {
                    break;
                }
                parts.push(take_buffer(self, &mut buf));
                if context == 0 {
                    break;
                }
            }
        }
        let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            format!("GSS-API error (major {major:#x}, minor {minor})")
        } else {
            parts.join(": ")
        }
    }
}

/// Copies and releases a buffer the library allocated, as lossy UTF-8.
fn take_buffer(gss: &Gss, buf: &mut Buffer) -> String {
    String::from_utf8_lossy(&take_bytes(gss, buf)).into_owned()
}

/// Copies and releases a buffer the library allocated.
pub(crate) fn take_bytes(gss: &Gss, buf: &mut Buffer) -> Vec<u8> {
    let bytes = if buf.value.is_null() || buf.length == 0 {
        Vec::new()
    } else {
        // SAFETY: the library filled `buf` with `length` readable bytes.
        unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) }.to_vec()
    };
    let mut m: OmUint32 = 0;
    // SAFETY: `buf` came from the library (or is empty, which release accepts).
    unsafe { (gss.release_buffer)(&mut m, buf) };
    bytes
}
