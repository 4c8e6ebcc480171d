-- Argo CD health of an llmops.dev EvalGate: Healthy when the operator found its assertions valid
-- for the current generation, Degraded when they cannot compile (every run would be an Error).
local hs = {}
local status = obj.status
local generation = obj.metadata.generation
local valid = nil
if status ~= nil and status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Valid" then
      valid = c
    end
  end
end
if valid == nil or (generation ~= nil and status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to validate the gate"
  return hs
end
if valid.status == "True" then
  hs.status = "Healthy"
  hs.message = "Assertions compile"
else
  hs.status = "Degraded"
  hs.message = valid.reason .. ": " .. valid.message
end
return hs
