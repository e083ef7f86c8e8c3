//! The registry: workflows by name, type-erased, and hook definitions by name (their validators
//! run at resume time).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::error::WorkflowError;
use crate::hook::{HookDef, PayloadValidator};

/// A workflow with its types erased: JSON in, JSON out.
pub trait ErasedWorkflow: Send + Sync + 'static {
    /// Start the workflow function.
    fn start(&self, ctx: Ctx, input: Value) -> BoxFuture<'static, Result<Value, WorkflowError>>;
    /// Check that `input` decodes into the workflow's input type.
    fn check_input(&self, input: &Value) -> Result<(), String>;
}

struct FnWorkflow<F, I, O> {
    f: F,
    _t: std::marker::PhantomData<fn(I) -> O>,
}

impl<F, Fut, I, O> ErasedWorkflow for FnWorkflow<F, I, O>
where
    F: Fn(Ctx, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    I: DeserializeOwned + 'static,
    O: Serialize + 'static,
{
    fn start(&self, ctx: Ctx, input: Value) -> BoxFuture<'static, Result<Value, WorkflowError>> {
        match serde_json::from_value::<I>(input) {
            Ok(i) => {
                let fut = (self.f)(ctx, i);
                Box::pin(async move {
                    let out = fut.await?;
                    serde_json::to_value(out).map_err(|e| WorkflowError::Decode {
                        message: format!("workflow output is not serializable: {e}"),
                    })
                })
            }
            Err(e) => Box::pin(async move {
                Err(WorkflowError::Decode {
                    message: format!("invalid input: {e}"),
                })
            }),
        }
    }

    fn check_input(&self, input: &Value) -> Result<(), String> {
        I::deserialize(input).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Workflows and hook definitions known to a worker.
///
/// A name is registered once: a second workflow (or hook definition) under a name already
/// taken is not registered, and [`Registry::check`] reports it, so a start-up can refuse it
/// instead of running whichever came last.
///
/// ```
/// use tether_core::{Ctx, Registry, WorkflowError};
/// async fn a(_: Ctx, _: ()) -> Result<(), WorkflowError> { Ok(()) }
/// let mut registry = Registry::new();
/// registry.workflow("a", a).workflow("a", a);
/// let e = registry.check().unwrap_err();
/// assert_eq!(e.to_string(), "workflow `a` is registered twice; give each workflow its own name");
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    workflows: BTreeMap<String, Arc<dyn ErasedWorkflow>>,
    hooks: BTreeMap<String, PayloadValidator>,
    /// Names registered a second time, in the order it happened.
    duplicates: Vec<RegistryError>,
    /// Keys of `hooks` that are aliases, not names.
    aliases: BTreeSet<String>,
    /// Published JSON Schemas of hook payloads, by name and alias.
    hook_schemas: BTreeMap<String, Arc<Value>>,
}

/// A registration that cannot stand (see [`Registry::check`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two workflows under one name.
    #[error("workflow `{0}` is registered twice; give each workflow its own name")]
    DuplicateWorkflow(String),
    /// Two hook definitions under one name.
    #[error(
        "hook definition `{0}` is registered twice; register each definition once (a workflow \
         that shares one needs no second registration) and give different ones their own names"
    )]
    DuplicateHook(String),
}

impl RegistryError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::DuplicateWorkflow(_) => "duplicate_workflow",
            RegistryError::DuplicateHook(_) => "duplicate_hook",
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("workflows", &self.workflows.keys().collect::<Vec<_>>())
            .field("hooks", &self.hooks.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `f` as workflow `name`: a plain `async fn(Ctx, I) -> Result<O, WorkflowError>`.
    pub fn workflow<F, Fut, I, O>(&mut self, name: &str, f: F) -> &mut Self
    where
        F: Fn(Ctx, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
    {
        if self.workflows.contains_key(name) {
            self.duplicates
                .push(RegistryError::DuplicateWorkflow(name.to_string()));
            return self;
        }
        self.workflows.insert(
            name.to_string(),
            Arc::new(FnWorkflow {
                f,
                _t: std::marker::PhantomData,
            }),
        );
        self
    }

    /// Register a hook definition, so payloads for hooks created from it are validated at
    /// resume time.
    pub fn hook<T>(&mut self, def: &HookDef<T>) -> &mut Self
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        if self.hooks.contains_key(def.name()) && !self.aliases.contains(def.name()) {
            self.duplicates
                .push(RegistryError::DuplicateHook(def.name().to_string()));
            return self;
        }
        let validator = def.validator();
        self.aliases.remove(def.name());
        self.hooks.insert(def.name().to_string(), validator.clone());
        match def.schema_shared() {
            Some(schema) => {
                self.hook_schemas.insert(def.name().to_string(), schema);
            }
            None => {
                self.hook_schemas.remove(def.name());
            }
        }
        // Older keys of the same definition (a former name, Tether 0.1's type-name key): a
        // real name always wins over an alias, and an alias never counts as a duplicate.
        for alias in def.aliases() {
            if !self.hooks.contains_key(alias) {
                self.hooks.insert(alias.clone(), validator.clone());
                self.aliases.insert(alias.clone());
                if let Some(schema) = def.schema_shared() {
                    self.hook_schemas.insert(alias.clone(), schema);
                }
            }
        }
        self
    }

    /// `Ok` when every name was registered once; otherwise the first name registered twice.
    pub fn check(&self) -> Result<(), RegistryError> {
        match self.duplicates.first() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Names of the registered hook definitions (not their aliases), sorted.
    pub fn hook_names(&self) -> Vec<String> {
        self.hooks
            .keys()
            .filter(|k| !self.aliases.contains(*k))
            .cloned()
            .collect()
    }

    /// The workflow registered as `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn ErasedWorkflow>> {
        self.workflows.get(name).cloned()
    }

    /// The published JSON Schema of hook definition `name` (or of the definition `name` is an
    /// alias of), if it has one (see [`HookDef::with_schema`]).
    pub fn hook_schema(&self, name: &str) -> Option<Arc<Value>> {
        self.hook_schemas.get(name).cloned()
    }

    /// The validator of hook definition `name`.
    pub fn hook_validator(&self, name: &str) -> Option<PayloadValidator> {
        self.hooks.get(name).cloned()
    }

    /// Names of the registered workflows, sorted.
    pub fn workflow_names(&self) -> Vec<String> {
        self.workflows.keys().cloned().collect()
    }
}
