//! Resource providers: components of the `paasm:resource/provider` world, called through
//! typed bindings.
//!
//! Every operation runs in a fresh store and instance (providers are stateless, as the seed
//! requires): the host puts the instance's [`Parameters`] in the store's table, passes the
//! provider a borrowed handle, and takes the collection back afterwards with whatever the
//! provider set (the values `get` retrieves, a physical key). A provider's own error value
//! ([`ProviderError`]) is kept apart from a guest failure (trap, timeout, memory).

use std::sync::Arc;

use anyhow::Context;
use wasmtime::component::Resource;

use super::bindings::provider::ProviderIndices;
use super::guest::{Guest, GuestError};
use crate::platform::{ParamKey, Parameters, PlatformView};

pub use super::bindings::provider::paasm::resource::types::{
    Choice, Description, Error as ProviderError, InvalidParameter, KeyKind, Prop, PropType,
};

/// Why a provider operation produced no result.
#[derive(Debug)]
pub enum OperationError {
    /// The provider answered an error (already exists, not found, invalid parameter, failed).
    Provider(ProviderError),
    /// The guest trapped, timed out or ran out of memory.
    Guest(GuestError),
}

impl std::fmt::Display for OperationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OperationError::Provider(ProviderError::AlreadyExists(m)) => {
                write!(f, "resource already exists: {m}")
            }
            OperationError::Provider(ProviderError::NotFound(m)) => {
                write!(f, "resource not found: {m}")
            }
            OperationError::Provider(ProviderError::InvalidParameter(p)) => {
                write!(f, "invalid parameter {:?}: {}", p.name, p.message)
            }
            OperationError::Provider(ProviderError::Failed(m)) => f.write_str(m),
            OperationError::Guest(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OperationError {}

/// The operations that take one parameter collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Get,
    Delete,
    Suspend,
    Resume,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::Delete => "delete",
            Operation::Suspend => "suspend",
            Operation::Resume => "resume",
        }
    }
}

/// A loaded provider component.
pub struct ProviderGuest {
    guest: Arc<Guest>,
    indices: ProviderIndices,
}

impl ProviderGuest {
    /// Checks that `guest` exports the provider operations with the expected types.
    pub fn new(guest: Arc<Guest>) -> anyhow::Result<Self> {
        let indices = ProviderIndices::new(guest.instance_pre())
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} is not a resource provider", guest.name()))?;
        Ok(Self { guest, indices })
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        self.guest.name()
    }

    /// The provider's attributes and schemas.
    pub async fn describe(&self) -> Result<Description, GuestError> {
        let (mut store, instance) = self.guest.instantiate_fresh().await?;
        let outcome = async {
            let provider = self.indices.load(&mut store, &instance)?;
            provider
                .paasm_resource_operations()
                .call_describe(&mut store)
                .await
        }
        .await;
        self.guest.finish_fresh(&mut store, "describe", outcome)
    }

    /// Runs `op` on `params`; the collection as the provider left it.
    pub async fn run(
        &self,
        op: Operation,
        params: Parameters,
    ) -> Result<Parameters, OperationError> {
        let (mut store, instance) = self
            .guest
            .instantiate_fresh()
            .await
            .map_err(OperationError::Guest)?;
        let outcome = async {
            let provider = self.indices.load(&mut store, &instance)?;
            let handle = store.data_mut().platform().push_parameters(params)?;
            let borrowed = Resource::new_borrow(handle.rep());
            let ops = provider.paasm_resource_operations();
            let result = match op {
                Operation::Create => ops.call_create(&mut store, borrowed).await?,
                Operation::Get => ops.call_get(&mut store, borrowed).await?,
                Operation::Delete => ops.call_delete(&mut store, borrowed).await?,
                Operation::Suspend => ops.call_suspend(&mut store, borrowed).await?,
                Operation::Resume => ops.call_resume(&mut store, borrowed).await?,
            };
            let params = store.data_mut().platform().take_parameters(handle)?;
            Ok(result.map(|()| params))
        }
        .await;
        flatten(self.guest.finish_fresh(&mut store, op.name(), outcome))
    }

    /// Runs `update` with the current and the new parameters; the current collection as the
    /// provider left it.
    pub async fn update(
        &self,
        params: Parameters,
        new_params: Parameters,
    ) -> Result<Parameters, OperationError> {
        let (mut store, instance) = self
            .guest
            .instantiate_fresh()
            .await
            .map_err(OperationError::Guest)?;
        let outcome = async {
            let provider = self.indices.load(&mut store, &instance)?;
            let handle = store.data_mut().platform().push_parameters(params)?;
            let new_handle = store.data_mut().platform().push_parameters(new_params)?;
            let result = provider
                .paasm_resource_operations()
                .call_update(
                    &mut store,
                    Resource::new_borrow(handle.rep()),
                    Resource::new_borrow(new_handle.rep()),
                )
                .await?;
            store.data_mut().platform().take_parameters(new_handle)?;
            let params = store.data_mut().platform().take_parameters(handle)?;
            Ok(result.map(|()| params))
        }
        .await;
        flatten(self.guest.finish_fresh(&mut store, "update", outcome))
    }

    /// The physical keys of the instances under the parent with physical key `parent_pkey`.
    pub async fn enumerate(
        &self,
        parent_pkey: Option<ParamKey>,
        config: Parameters,
    ) -> Result<Vec<ParamKey>, OperationError> {
        let (mut store, instance) = self
            .guest
            .instantiate_fresh()
            .await
            .map_err(OperationError::Guest)?;
        let outcome = async {
            let provider = self.indices.load(&mut store, &instance)?;
            let handle = store.data_mut().platform().push_parameters(config)?;
            let parent: Option<super::platform_bindings::types::Key> = parent_pkey.map(Into::into);
            let result = provider
                .paasm_resource_operations()
                .call_enumerate(
                    &mut store,
                    parent.as_ref(),
                    Resource::new_borrow(handle.rep()),
                )
                .await?;
            store.data_mut().platform().take_parameters(handle)?;
            Ok(result.map(|keys| keys.into_iter().map(ParamKey::from).collect()))
        }
        .await;
        flatten(self.guest.finish_fresh(&mut store, "enumerate", outcome))
    }
}

fn flatten<T>(outcome: Result<Result<T, ProviderError>, GuestError>) -> Result<T, OperationError> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(OperationError::Provider(e)),
        Err(e) => Err(OperationError::Guest(e)),
    }
}
