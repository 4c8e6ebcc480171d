-- Argo CD health of an llmops.dev PromptVersion: Healthy once the operator validated the current
-- generation, Degraded when its templates do not compile (only a new version fixes that).
local hs = {}
local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.valid == nil or (generation ~= nil and status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to validate the prompt"
  return hs
end
if status.valid == true then
  hs.status = "Healthy"
  local users = status.usedBy or {}
  hs.message = "Valid; bound by " .. #users .. " Model(s)"
else
  hs.status = "Degraded"
  hs.message = "Invalid: " .. (status.reason or "")
end
return hs
