//! The route table: every endpoint under `/api/v1`, its method, who may call it and which
//! operation serves it. The router, the 405 `Allow` header, the scope checks and the OpenAPI
//! coverage test all read this one table.

use crate::model::Scope;
use hyper::Method;
use std::sync::OnceLock;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed.
    Public,
    /// Any valid credential, even a user who still has to change the initial password.
    Any,
    /// A logged-in user (not an API key).
    User,
    /// A credential holding this scope.
    Scope(Scope),
    /// A signed media link (`?exp=&sig=` for the path's `{id}`), or a credential holding this
    /// scope. A link that is present but tampered with, expired or for other media is a 403.
    SignedOr(Scope),
}

/// One operation per (method, path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Health,
    GetSettings,
    PutSettings,
    Storage,
    SslStatus,
    Login,
    Logout,
    Me,
    ChangePassword,
    ListCameras,
    CreateCamera,
    TestCamera,
    GetCamera,
    UpdateCamera,
    DeleteCamera,
    StartCamera,
    CameraSnapshot,
    CameraLive,
    CameraLiveMjpeg,
    StopCamera,
    ListEvents,
    CreateEvent,
    EventStats,
    ExportEvents,
    CleanupEvents,
    GetEvent,
    DeleteEvent,
    EventThumbnail,
    EventClip,
    ReanalyseEvent,
    ListControllers,
    CreateController,
    TestController,
    GetController,
    UpdateController,
    DeleteController,
    ControllerCameras,
    TestSavedController,
    EnableProtectCamera,
    DisableProtectCamera,
    ProtectCameraFilters,
    AiProviders,
    AiDescribe,
    AiUsage,
    AiCapabilities,
    AiContextMetrics,
    AiRefinePrompt,
    ListApiKeys,
    CreateApiKey,
    GetApiKey,
    RevokeApiKey,
    ApiKeyUsage,
    ListAlertRules,
    CreateAlertRule,
    GetAlertRule,
    UpdateAlertRule,
    DeleteAlertRule,
    TestAlertRule,
    ListNotifications,
    DeleteNotifications,
    MarkAllNotificationsRead,
    MarkNotificationRead,
    DeleteNotification,
    TestWebhook,
    WebhookLogs,
    ExportWebhookLogs,
    GetMqttConfig,
    PutMqttConfig,
    MqttStatus,
    TestMqtt,
    PublishMqttDiscovery,
}

impl Op {
    /// A WebSocket route: the server checks the upgrade handshake and authenticates it as
    /// `/ws` (with `?token=`, and the cookie only from the appliance's own pages).
    pub fn is_websocket(self) -> bool {
        matches!(self, Op::CameraLive)
    }
}

pub struct Route {
    pub method: Method,
    /// Path under `/api/v1`, in matchit syntax (`{id}`) which is also OpenAPI's.
    pub path: &'static str,
    pub access: Access,
    pub op: Op,
}

use Access::*;
use Scope::*;

macro_rules! routes {
    ($($method:ident $path:literal $access:expr => $op:ident;)*) => {
        pub const ROUTES: &[Route] = &[
            $(Route { method: Method::$method, path: $path, access: $access, op: Op::$op },)*
        ];
    };
}

routes! {
    GET "/system/health" Public => Health;
    GET "/system/settings" Scope(Admin) => GetSettings;
    PUT "/system/settings" Scope(Admin) => PutSettings;
    GET "/system/storage" Scope(Admin) => Storage;
    GET "/system/ssl-status" Scope(Admin) => SslStatus;
    POST "/auth/login" Public => Login;
    POST "/auth/logout" Any => Logout;
    GET "/auth/me" Any => Me;
    POST "/auth/change-password" User => ChangePassword;
    GET "/cameras" Scope(ReadCameras) => ListCameras;
    POST "/cameras" Scope(WriteCameras) => CreateCamera;
    POST "/cameras/test" Scope(WriteCameras) => TestCamera;
    GET "/cameras/{id}" Scope(ReadCameras) => GetCamera;
    PUT "/cameras/{id}" Scope(WriteCameras) => UpdateCamera;
    DELETE "/cameras/{id}" Scope(WriteCameras) => DeleteCamera;
    POST "/cameras/{id}/start" Scope(WriteCameras) => StartCamera;
    POST "/cameras/{id}/stop" Scope(WriteCameras) => StopCamera;
    GET "/cameras/{id}/snapshot" Scope(ReadCameras) => CameraSnapshot;
    GET "/cameras/{id}/live" Scope(ReadCameras) => CameraLive;
    GET "/cameras/{id}/live.mjpeg" Scope(ReadCameras) => CameraLiveMjpeg;
    GET "/events" Scope(ReadEvents) => ListEvents;
    POST "/events" Scope(Admin) => CreateEvent;
    GET "/events/stats" Scope(ReadEvents) => EventStats;
    GET "/events/export" Scope(ReadEvents) => ExportEvents;
    DELETE "/events/cleanup" Scope(Admin) => CleanupEvents;
    GET "/events/{id}" Scope(ReadEvents) => GetEvent;
    DELETE "/events/{id}" Scope(Admin) => DeleteEvent;
    GET "/events/{id}/thumbnail" SignedOr(ReadEvents) => EventThumbnail;
    GET "/events/{id}/clip" SignedOr(ReadEvents) => EventClip;
    POST "/events/{id}/reanalyse" Scope(Admin) => ReanalyseEvent;
    GET "/protect/controllers" Scope(ReadCameras) => ListControllers;
    POST "/protect/controllers" Scope(WriteCameras) => CreateController;
    POST "/protect/controllers/test" Scope(WriteCameras) => TestController;
    GET "/protect/controllers/{id}" Scope(ReadCameras) => GetController;
    PUT "/protect/controllers/{id}" Scope(WriteCameras) => UpdateController;
    DELETE "/protect/controllers/{id}" Scope(WriteCameras) => DeleteController;
    GET "/protect/controllers/{id}/cameras" Scope(ReadCameras) => ControllerCameras;
    POST "/protect/controllers/{id}/test" Scope(WriteCameras) => TestSavedController;
    POST "/protect/controllers/{id}/cameras/{protect_camera_id}/enable" Scope(WriteCameras) => EnableProtectCamera;
    POST "/protect/controllers/{id}/cameras/{protect_camera_id}/disable" Scope(WriteCameras) => DisableProtectCamera;
    PUT "/protect/controllers/{id}/cameras/{protect_camera_id}/filters" Scope(WriteCameras) => ProtectCameraFilters;
    GET "/ai/providers" Scope(Admin) => AiProviders;
    POST "/ai/describe" Scope(Admin) => AiDescribe;
    GET "/ai/usage" Scope(Admin) => AiUsage;
    GET "/ai/capabilities" Scope(Admin) => AiCapabilities;
    GET "/ai/context-metrics" Scope(Admin) => AiContextMetrics;
    POST "/ai/refine-prompt" Scope(Admin) => AiRefinePrompt;
    GET "/api-keys" Scope(Admin) => ListApiKeys;
    POST "/api-keys" Scope(Admin) => CreateApiKey;
    GET "/api-keys/{id}" Scope(Admin) => GetApiKey;
    DELETE "/api-keys/{id}" Scope(Admin) => RevokeApiKey;
    GET "/api-keys/{id}/usage" Scope(Admin) => ApiKeyUsage;
    GET "/alert-rules" Scope(Admin) => ListAlertRules;
    POST "/alert-rules" Scope(Admin) => CreateAlertRule;
    GET "/alert-rules/{id}" Scope(Admin) => GetAlertRule;
    PUT "/alert-rules/{id}" Scope(Admin) => UpdateAlertRule;
    DELETE "/alert-rules/{id}" Scope(Admin) => DeleteAlertRule;
    POST "/alert-rules/{id}/test" Scope(Admin) => TestAlertRule;
    GET "/notifications" Scope(ReadEvents) => ListNotifications;
    DELETE "/notifications" Scope(ReadEvents) => DeleteNotifications;
    PATCH "/notifications/mark-all-read" Scope(ReadEvents) => MarkAllNotificationsRead;
    PATCH "/notifications/{id}/read" Scope(ReadEvents) => MarkNotificationRead;
    DELETE "/notifications/{id}" Scope(ReadEvents) => DeleteNotification;
    POST "/webhooks/test" Scope(Admin) => TestWebhook;
    GET "/webhooks/logs" Scope(Admin) => WebhookLogs;
    GET "/webhooks/logs/export" Scope(Admin) => ExportWebhookLogs;
    GET "/integrations/mqtt/config" Scope(Admin) => GetMqttConfig;
    PUT "/integrations/mqtt/config" Scope(Admin) => PutMqttConfig;
    GET "/integrations/mqtt/status" Scope(Admin) => MqttStatus;
    POST "/integrations/mqtt/test" Scope(Admin) => TestMqtt;
    POST "/integrations/mqtt/publish-discovery" Scope(Admin) => PublishMqttDiscovery;
}

/// Paths with the indexes of their routes.
struct Table {
    router: matchit::Router<Vec<usize>>,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut by_path: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, r) in ROUTES.iter().enumerate() {
            match by_path.iter_mut().find(|(p, _)| *p == r.path) {
                Some((_, v)) => v.push(i),
                None => by_path.push((r.path, vec![i])),
            }
        }
        let mut router = matchit::Router::new();
        for (p, v) in by_path {
            router
                .insert(p, v)
                .expect("route table paths are valid and distinct");
        }
        Table { router }
    })
}

/// The outcome of matching a request path and method.
pub enum Found {
    Route(&'static Route, Vec<(String, String)>),
    /// The path exists but not with this method; the allowed methods.
    WrongMethod(Vec<Method>),
    NotFound,
}

pub fn find(method: &Method, path: &str) -> Found {
    let Ok(m) = table().router.at(path) else {
        return Found::NotFound;
    };
    let params: Vec<(String, String)> = m
        .params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for &i in m.value {
        if ROUTES[i].method == *method
            || (*method == Method::HEAD && ROUTES[i].method == Method::GET)
        {
            return Found::Route(&ROUTES[i], params);
        }
    }
    Found::WrongMethod(m.value.iter().map(|&i| ROUTES[i].method.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, path: &str) -> Option<Op> {
        match find(&method, path) {
            Found::Route(r, _) => Some(r.op),
            _ => None,
        }
    }

    #[test]
    fn decode_table() {
        assert_eq!(op(Method::GET, "/events"), Some(Op::ListEvents));
        assert_eq!(op(Method::GET, "/events/stats"), Some(Op::EventStats));
        assert_eq!(op(Method::GET, "/events/abc"), Some(Op::GetEvent));
        assert_eq!(
            op(Method::DELETE, "/events/cleanup"),
            Some(Op::CleanupEvents)
        );
        assert_eq!(op(Method::DELETE, "/events/abc"), Some(Op::DeleteEvent));
        assert_eq!(op(Method::POST, "/cameras/test"), Some(Op::TestCamera));
        assert_eq!(op(Method::POST, "/cameras/x/start"), Some(Op::StartCamera));
        assert_eq!(op(Method::DELETE, "/api-keys/k"), Some(Op::RevokeApiKey));
        assert_eq!(op(Method::GET, "/cameras/c/live"), Some(Op::CameraLive));
        assert_eq!(
            op(Method::GET, "/cameras/c/live.mjpeg"),
            Some(Op::CameraLiveMjpeg)
        );
        assert_eq!(op(Method::HEAD, "/events/e/clip"), Some(Op::EventClip));
        assert!(Op::CameraLive.is_websocket() && !Op::CameraLiveMjpeg.is_websocket());
        assert!(matches!(find(&Method::PATCH, "/events"), Found::WrongMethod(m) if m.len() == 2));
        assert!(matches!(find(&Method::GET, "/nope"), Found::NotFound));
        assert!(matches!(find(&Method::GET, "/events/"), Found::NotFound));
    }
}
