//! What the guests written in C and Go share: their WIT resolved together with the platform and
//! service packages, bindings from wit-bindgen's generators (used as libraries, so no
//! `wit-bindgen` CLI is installed), and the step that makes their core module a component with
//! wit-component and the WASI preview1 reactor adapter of the wasmtime release the host links
//! (crate `wasi-preview1-component-adapter-provider`, same major version).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_bindgen_core::wit_parser::{Resolve, WorldId};
use wit_bindgen_core::{Files, WorldGenerator};

use crate::guests::Foreign;
use crate::paths::Paths;

/// A guest's world, resolved.
pub struct Wit {
    pub resolve: Resolve,
    pub world: WorldId,
}

/// Resolves the guest's WIT directory (its `wit` in `guest.toml`) after the platform and
/// service packages it depends on, and selects its `world`.
pub fn resolve(paths: &Paths, guest: &Foreign) -> Result<Wit> {
    let mut resolve = Resolve::default();
    for dep in ["platform", "service"] {
        let dir = paths.root.join("wit").join(dep);
        resolve
            .push_dir(&dir)
            .with_context(|| format!("cannot read the WIT package in {}", dir.display()))?;
    }
    let dir = guest.dir.join(&guest.manifest.wit);
    let (package, _) = resolve
        .push_dir(&dir)
        .with_context(|| format!("{}: cannot read the WIT in {}", guest.name, dir.display()))?;
    let world = resolve
        .select_world(&[package], Some(&guest.manifest.world))
        .with_context(|| format!("{}: no world {:?}", guest.name, guest.manifest.world))?;
    Ok(Wit { resolve, world })
}

/// Runs a bindings generator over the world and writes its files under `out`.
pub fn bindings(wit: &mut Wit, mut generator: Box<dyn WorldGenerator>, out: &Path) -> Result<()> {
    let mut files = Files::default();
    generator
        .generate(&mut wit.resolve, wit.world, &mut files)
        .context("cannot generate the bindings")?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Makes the preview1 core module `core` a component of the world and writes it to `out`
/// (through a temporary file and a rename). With `embed`, the world is embedded in the module
/// first (C's bindings carry it already, in an object file linked into the module).
pub fn component(wit: &Wit, core: &Path, out: &Path, embed: bool) -> Result<u64> {
    let mut module = fs::read(core)
        .with_context(|| format!("cannot read the core module {}", core.display()))?;
    if embed {
        wit_component::embed_component_metadata(
            &mut module,
            &wit.resolve,
            wit.world,
            wit_component::StringEncoding::UTF8,
        )
        .context("cannot embed the world in the core module")?;
    }
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .context("the core module does not fit the world")?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("cannot add the WASI preview1 adapter")?
        .encode()
        .with_context(|| format!("cannot make a component of {}", core.display()))?;
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let tmp = out.with_extension("wasm.tmp");
    fs::write(&tmp, &component).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, out)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), out.display()))?;
    Ok(component.len() as u64)
}
