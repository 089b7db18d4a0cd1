//! The IaaS layer: how nodes are described to the clouds they boot on.
//!
//! Today: contextualization, the boot script of a node assembled from the configuration tree
//! (`context`). The controller and the cloud drivers build on it.

pub mod context;
