//! Objects kept compact in the controller's watch caches. A parsed JSON tree (`serde_json::Value`)
//! takes several times the bytes of its text: with 10,000 Builds and their Workflows the caches
//! were most of the controller's memory. So a cached object keeps its typed metadata (what the
//! watch machinery and the triggers read) and holds the rest as one JSON text, parsed when a
//! reconcile reads it ([`unpack`]).

use kube::api::DynamicObject;
use serde_json::Value;

/// The key under which a packed object's data is kept.
const PACKED: &str = "packed";

/// Packs `obj`'s data (everything but metadata, kind and apiVersion) into one JSON text.
/// `managedFields` go: nothing reads them.
pub fn pack(obj: &mut DynamicObject) {
    obj.metadata.managed_fields = None;
    let text = obj.data.to_string();
    obj.data = serde_json::json!({ PACKED: text });
}

fn is_packed(obj: &DynamicObject) -> bool {
    obj.data
        .as_object()
        .is_some_and(|m| m.len() == 1 && m.get(PACKED).is_some_and(Value::is_string))
}

/// The whole object as JSON (metadata, kind, apiVersion and data), packed or not.
pub fn unpack(obj: &DynamicObject) -> Result<Value, serde_json::Error> {
    if !is_packed(obj) {
        return serde_json::to_value(obj);
    }
    let text = obj.data[PACKED].as_str().unwrap_or("{}");
    let mut data: Value = serde_json::from_str(text)?;
    let head = serde_json::to_value(DynamicObject {
        types: obj.types.clone(),
        metadata: obj.metadata.clone(),
        data: Value::Null,
    })?;
    if let (Some(d), Value::Object(h)) = (data.as_object_mut(), head) {
        for (k, v) in h {
            if !v.is_null() {
                d.insert(k, v);
            }
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_packed_object_unpacks_to_itself_without_managed_fields() {
        let whole = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "cart-1", "namespace": "acme", "generation": 2,
                "labels": {"openchoreo.dev/build-plane": "gpu"}, "finalizers": ["f"],
                "managedFields": [{"manager": "m", "operation": "Update"}]},
            "spec": {"owner": {"projectName": "shop", "componentName": "cart"},
                "parameters": [{"name": "a", "value": ""}]},
            "status": {"conditions": [{"type": "BuildInitiated", "status": "True"}]}});
        let mut obj: DynamicObject = serde_json::from_value(whole.clone()).unwrap();
        pack(&mut obj);
        assert!(is_packed(&obj));
        assert_eq!(obj.metadata.name.as_deref(), Some("cart-1"));
        let mut expected = whole;
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(unpack(&obj).unwrap(), expected);
        // An object that was never packed reads as it is.
        let plain: DynamicObject = serde_json::from_value(expected.clone()).unwrap();
        assert_eq!(unpack(&plain).unwrap(), expected);
    }
}
