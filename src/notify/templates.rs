//! Message templates: built-in defaults for every channel and language, overridable by the
//! shop per workflow and stage from a folder, compiled and test-rendered at start-up so that a
//! broken template is reported with its file and line before anything is sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde_json::json;

use crate::domain::workflow::Workflows;

/// One renderable part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Email subject line.
    EmailSubject,
    /// Plain-text email body.
    EmailText,
    /// HTML email body.
    EmailHtml,
    /// SMS text.
    Sms,
    /// WhatsApp text.
    Whatsapp,
    /// Telegram text (also the photo caption).
    Telegram,
    /// Staff message subject.
    StaffSubject,
    /// Staff message text.
    StaffText,
}

impl Part {
    /// The file name of this part inside a language folder.
    pub fn file(self) -> &'static str {
        match self {
            Part::EmailSubject => "email.subject",
            Part::EmailText => "email.txt",
            Part::EmailHtml => "email.html",
            Part::Sms => "sms.txt",
            Part::Whatsapp => "whatsapp.txt",
            Part::Telegram => "telegram.txt",
            Part::StaffSubject => "staff.subject",
            Part::StaffText => "staff.txt",
        }
    }

    const CUSTOMER: [Part; 6] =
        [Part::EmailSubject, Part::EmailText, Part::EmailHtml, Part::Sms, Part::Whatsapp, Part::Telegram];
}

macro_rules! builtin {
    ($($lang:literal),+) => {
        &[$(
            ($lang, "email.subject", include_str!(concat!("../../templates/messages/", $lang, "/email.subject"))),
            ($lang, "email.txt", include_str!(concat!("../../templates/messages/", $lang, "/email.txt"))),
            ($lang, "email.html", include_str!(concat!("../../templates/messages/", $lang, "/email.html"))),
            ($lang, "sms.txt", include_str!(concat!("../../templates/messages/", $lang, "/sms.txt"))),
            ($lang, "whatsapp.txt", include_str!(concat!("../../templates/messages/", $lang, "/whatsapp.txt"))),
            ($lang, "telegram.txt", include_str!(concat!("../../templates/messages/", $lang, "/telegram.txt"))),
        )+]
    };
}

/// Built-in customer templates as `(language, file, source)`.
const BUILTIN: &[(&str, &str, &str)] = builtin!("en", "it", "es");
/// Built-in staff templates (English; override them to change the language).
const BUILTIN_STAFF: &[(&str, &str, &str)] = &[
    ("en", "staff.subject", include_str!("../../templates/messages/en/staff.subject")),
    ("en", "staff.txt", include_str!("../../templates/messages/en/staff.txt")),
];

/// A template that does not compile or render, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TemplateError {
    /// The file (or `built-in:<name>`).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The compiled templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Template name to the file it came from, for errors.
    origins: BTreeMap<String, String>,
    default_language: String,
}

fn auto_escape(name: &str) -> AutoEscape {
    if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None }
}

impl Templates {
    /// Compiles the built-ins and the files under `dir`, then renders every part a notifying
    /// stage of `workflows` can need, in every language, with sample data.
    pub fn load(dir: Option<&Path>, workflows: &Workflows, default_language: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(auto_escape);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| TemplateError { file: "built-in".into(), line: 0, message: e.to_string() })?,
        );
        let mut origins = BTreeMap::new();
        let mut add = |env: &mut Environment<'static>, name: String, source: String, file: String| {
            env.add_template_owned(name.clone(), source).map_err(|e| TemplateError {
                file: file.clone(),
                line: e.line().unwrap_or(0),
                message: e.to_string(),
            })?;
            origins.insert(name, file);
            Ok::<(), TemplateError>(())
        };
        for (lang, file, source) in BUILTIN.iter().chain(BUILTIN_STAFF) {
            let name = format!("{lang}/{file}");
            add(&mut env, name.clone(), (*source).to_owned(), format!("built-in:{name}"))?;
        }
        if let Some(dir) = dir {
            let mut files = Vec::new();
            collect(dir, &mut files).map_err(|e| TemplateError {
                file: dir.display().to_string(),
                line: 0,
                message: e.to_string(),
            })?;
            for path in files {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                let source = std::fs::read_to_string(&path).map_err(|e| TemplateError {
                    file: path.display().to_string(),
                    line: 0,
                    message: e.to_string(),
                })?;
                add(&mut env, name, source, path.display().to_string())?;
            }
        }
        let templates = Self { env, origins, default_language: default_language.to_owned() };
        templates.check(workflows)?;
        Ok(templates)
    }

    /// Renders every customer part for every notifying stage and language, and the staff parts.
    fn check(&self, workflows: &Workflows) -> Result<(), TemplateError> {
        let languages: Vec<String> = self
            .origins
            .keys()
            .filter_map(|name| name.split('/').rev().nth(1).map(str::to_owned))
            .filter(|l| l.len() == 2)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for wf in workflows.iter() {
            for stage in wf.stages.iter().filter(|s| s.notify) {
                for lang in &languages {
                    let ctx = sample_context(wf.key.as_str(), stage.key.as_str(), &stage.wording.label);
                    for part in Part::CUSTOMER {
                        self.render(part, wf.key.as_str(), stage.key.as_str(), lang, &ctx)?;
                    }
                }
            }
        }
        let ctx = sample_context("sample", "sample", "Sample");
        for part in [Part::StaffSubject, Part::StaffText] {
            self.render(part, "", "", &self.default_language, &ctx)?;
        }
        Ok(())
    }

    /// The template to use: the most specific override for the workflow and stage, in the
    /// first of `lang`, the shop's language and English that has one.
    fn pick(&self, part: Part, workflow: &str, stage: &str, lang: &str) -> Option<String> {
        for l in [lang, self.default_language.as_str(), "en"] {
            for name in [
                format!("{workflow}/{stage}/{l}/{}", part.file()),
                format!("{workflow}/{l}/{}", part.file()),
                format!("{l}/{}", part.file()),
            ] {
                if self.origins.contains_key(&name) {
                    return Some(name);
                }
            }
        }
        None
    }

    /// Renders `part` with `ctx`; errors carry the template's file and line.
    pub fn render(
        &self,
        part: Part,
        workflow: &str,
        stage: &str,
        lang: &str,
        ctx: &serde_json::Value,
    ) -> Result<String, TemplateError> {
        let name = self.pick(part, workflow, stage, lang).ok_or_else(|| TemplateError {
            file: part.file().to_owned(),
            line: 0,
            message: "no template for this part".to_owned(),
        })?;
        let fail = |e: minijinja::Error| TemplateError {
            file: e
                .name()
                .and_then(|n| self.origins.get(n))
                .cloned()
                .unwrap_or_else(|| self.origins.get(&name).cloned().unwrap_or_default()),
            line: e.line().unwrap_or(0),
            message: e.to_string(),
        };
        let template = self.env.get_template(&name).map_err(fail)?;
        let out = template.render(Value::from(minijinja::value::Serde(ctx))).map_err(fail)?;
        Ok(out.trim().to_owned())
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.') && [".subject", ".txt", ".html"].iter().any(|e| n.ends_with(e)))
        {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// Every documented variable, with plausible values.
pub fn sample_context(workflow: &str, stage: &str, label: &str) -> serde_json::Value {
    json!({
        "shop": { "name": "Sample Workshop", "email": "shop@example.com", "phone": "+390000000", "website": "https://example.com", "color": "#7a3b1d" },
        "customer": { "name": "Sam Sample" },
        "order": {
            "reference": "K-000001", "workflow": workflow, "priority": "standard",
            "items": [{ "description": "Sample piece", "variant": "L", "quantity": 1, "material": "oak" }],
        },
        "stage": { "key": stage, "label": label, "text": "What happens now.", "approval": false },
        "event": { "kind": "moved", "source": "api", "answer": "", "from_label": "", "to_label": "", "needs": "" },
        "reminder": false,
        "note": "A note",
        "photo_url": "https://example.com/photo.jpg",
        "photo_cid": "cid:stage-photo",
        "tracking_url": "https://example.com/t/token",
        "unsubscribe_url": "https://example.com/u/token",
        "eta": { "message": "Expected on 1 May", "date": "1 May", "late": ["Our step “Sample” is taking 2 days longer than planned. That delay is ours."] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_ins_render_for_every_preset_and_language() {
        let workflows = crate::domain::workflow::load_presets().expect("presets");
        let t = Templates::load(None, &workflows, "en").expect("built-ins are valid");
        let ctx = sample_context("stone", "fabrication", "Fabrication");
        let it = t.render(Part::EmailSubject, "stone", "fabrication", "it", &ctx).expect("renders");
        assert_eq!(it, "Sample Workshop: ordine K-000001 — Fabrication");
        let html = t.render(Part::EmailHtml, "stone", "fabrication", "en", &ctx).expect("renders");
        // HTML escaping writes `/` as `&#x2f;`.
        assert!(html.contains("cid:stage-photo") && html.contains("https:&#x2f;&#x2f;example.com&#x2f;u&#x2f;token"));
        // A late order's message says whose step is late, as the page does.
        let text = t.render(Part::EmailText, "stone", "fabrication", "en", &ctx).expect("renders");
        assert!(text.contains("That delay is ours."), "{text}");
        // An unknown language falls back to the shop's.
        let de = t.render(Part::Sms, "stone", "fabrication", "de", &ctx).expect("renders");
        assert!(de.contains("is now at Fabrication"), "{de}");
    }

    #[test]
    fn a_hold_that_waits_on_the_customer_says_what_we_need_in_every_language_and_part() {
        let workflows = crate::domain::workflow::load_presets().expect("presets");
        let t = Templates::load(None, &workflows, "en").expect("built-ins are valid");
        let mut ctx = sample_context("jewelry", "design", "Design");
        ctx["event"]["kind"] = json!("held");
        ctx["event"]["needs"] = json!("your ring size");
        ctx["eta"]["message"] = json!("Depends on you: about 5 days of work follows once we hear from you.");
        let render = |part, lang| t.render(part, "jewelry", "design", lang, &ctx).expect("renders");
        for (lang, subject, need) in [
            ("en", "we need something from you", "We need: your ring size"),
            ("it", "ci serve qualcosa da lei", "Ci serve: your ring size"),
            ("es", "necesitamos algo de usted", "Necesitamos: your ring size"),
        ] {
            assert!(render(Part::EmailSubject, lang).ends_with(subject), "{lang}");
            for part in [Part::Sms, Part::Whatsapp, Part::Telegram] {
                assert!(render(part, lang).contains(need), "{lang} {part:?}: {}", render(part, lang));
            }
            for part in [Part::EmailText, Part::EmailHtml] {
                assert!(render(part, lang).contains("your ring size"), "{lang} {part:?}");
            }
        }
        let text = render(Part::EmailText, "en");
        assert!(text.contains("Depends on you"), "the estimate says it depends on them: {text}");
        ctx["event"]["needs"] = json!("");
        assert!(t.render(Part::Sms, "jewelry", "design", "en", &ctx).expect("renders").contains("is on hold."));
    }

    #[test]
    fn overrides_win_by_workflow_and_stage_and_errors_name_file_and_line() {
        let workflows = crate::domain::workflow::load_presets().expect("presets");
        let dir = tempfile::tempdir().expect("dir");
        let stage_dir = dir.path().join("stone/fabrication/en");
        std::fs::create_dir_all(&stage_dir).expect("mkdir");
        std::fs::write(stage_dir.join("sms.txt"), "Cutting {{ order.reference }} now").expect("write");
        let t = Templates::load(Some(dir.path()), &workflows, "en").expect("valid override");
        let ctx = sample_context("stone", "fabrication", "Fabrication");
        assert_eq!(t.render(Part::Sms, "stone", "fabrication", "en", &ctx).expect("r"), "Cutting K-000001 now");
        assert!(t.render(Part::Sms, "stone", "shipping", "en", &ctx).expect("r").contains("is now at"));

        std::fs::write(stage_dir.join("telegram.txt"), "line one\n{% if %}").expect("write");
        let err = Templates::load(Some(dir.path()), &workflows, "en").expect_err("syntax error");
        assert!(err.file.ends_with("stone/fabrication/en/telegram.txt"), "{err}");
        assert_eq!(err.line, 2, "{err}");

        std::fs::write(stage_dir.join("telegram.txt"), "ok\n\n{{ order.referenze }}").expect("write");
        let err = Templates::load(Some(dir.path()), &workflows, "en").expect_err("unknown variable");
        assert!(err.file.ends_with("telegram.txt") && err.line == 3, "{err}");
    }
}
