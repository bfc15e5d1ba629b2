//! What the engine knows about the notice templates: a notice rendered from its
//! [`NoticeContext`], and the check that renders every template against the
//! engine's sample data (`puebla check`). The registry itself (loading, strict
//! rendering, helpers) is [`crate::mail::templates`], which knows nothing of the
//! engine; these methods extend it here, where the view models and samples are.

use std::collections::BTreeSet;

use crate::domain::Language;
use crate::engine::notice::NoticeContext;
use crate::engine::samples::sample_contexts;
use crate::engine::system_notice;
use crate::mail::templates::{data_error, RenderError, Rendered, Templates};
use crate::workflow::procedure::TEMPLATE_NAMES;
use crate::workflow::DataErrors;

impl Templates {
    /// Renders notice `name` in `lang`. The subject is rendered first: the mailto links
    /// of the text and HTML parts reply to it.
    pub fn render(
        &self,
        name: &str,
        lang: Language,
        ctx: &NoticeContext,
    ) -> Result<Rendered, RenderError> {
        self.render_with_subject(name, lang, ctx, |subject| ctx.clone().with_subject(subject))
    }

    /// Renders every notice the procedures can send, in every language, against every
    /// sample context (with and without a diff, adopted and not adopted, with and
    /// without a reply address), and every template the engine sends on its own
    /// ([`ENGINE_TEMPLATE_NAMES`](system_notice::ENGINE_TEMPLATE_NAMES): digest,
    /// quarantine and oversized explanations, bounce alert) against its samples;
    /// reports each failure with its file.
    pub fn check(&self) -> Result<(), DataErrors> {
        let mut errors = DataErrors::default();
        let mut seen = BTreeSet::new();
        let mut report = |name: &str, variant: &str, e: RenderError| {
            // One report per file and message, not one per sample.
            let key = (e.file().to_path_buf(), e.to_string());
            if seen.insert(key) {
                errors.0.push(data_error(
                    e.file(),
                    0,
                    0,
                    format!("{name} ({variant} sample): {}", strip_file(&e)),
                ));
            }
        };
        for lang in Language::ALL {
            let samples = sample_contexts(lang);
            for name in TEMPLATE_NAMES {
                for (variant, ctx) in samples.iter().filter(|(_, c)| c.for_template(name)) {
                    if let Err(e) = self.render(name, lang, ctx) {
                        report(name, variant, e);
                    }
                }
            }
            let samples = system_notice::samples(lang);
            for name in system_notice::ENGINE_TEMPLATE_NAMES {
                for (_, variant, data) in samples.iter().filter(|(n, _, _)| *n == name) {
                    if let Err(e) = self.render_with(name, lang, data) {
                        report(name, variant, e);
                    }
                }
            }
        }
        if errors.0.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The error's message without the file, which the caller reports separately.
fn strip_file(e: &RenderError) -> String {
    match e {
        RenderError::Missing { .. } => "the file is missing".to_string(),
        RenderError::Failed { message, .. } => message.clone(),
    }
}
